#!/usr/bin/env python3
"""Splits rendered manifests for validation.

Objects of the Kubernetes API go to OUT.yaml, for kubernetes-validate.
Objects of a custom resource (an apiVersion whose group is not one of
Kubernetes' own) are validated here against .ci/checks/schemas/
<group>_<version>_<Kind>.json (JSON Schema 2020-12); a custom kind without
a schema there fails, as an unknown kind fails kubernetes-validate.

Usage: crd_validate.py RENDERED.yaml OUT.yaml
"""

import json
import os
import sys

import jsonschema
import yaml

SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemas")


def is_builtin(api_version):
    """Kubernetes' own groups: the core group, *.k8s.io, and the unsuffixed ones."""
    if "/" not in api_version:
        return True
    group = api_version.split("/", 1)[0]
    return "." not in group or group.endswith(".k8s.io")


def main(rendered, out):
    with open(rendered, encoding="utf-8") as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    builtin, problems, checked = [], [], 0
    for obj in objects:
        api_version = obj.get("apiVersion", "")
        kind = obj.get("kind", "")
        name = (obj.get("metadata") or {}).get("name")
        if is_builtin(api_version):
            builtin.append(obj)
            continue
        group, version = api_version.split("/", 1)
        path = os.path.join(SCHEMAS, f"{group}_{version}_{kind}.json")
        if not os.path.exists(path):
            problems.append(f"{kind}/{name}: no schema for {api_version} {kind} ({path})")
            continue
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.path))
        for error in errors:
            at = ".".join(str(p) for p in error.path) or "(top)"
            problems.append(f"{kind}/{name}: {at}: {error.message}")
        if not errors:
            checked += 1
            print(f"{kind}/{name} ({api_version}) is valid against {os.path.basename(path)}")
    with open(out, "w", encoding="utf-8") as f:
        yaml.safe_dump_all(builtin, f, sort_keys=False)
    for problem in problems:
        print(f"ERROR {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
