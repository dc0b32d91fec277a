#!/usr/bin/env python3
"""Checks rendered manifests against the rules the Pressroom manifests keep.

Schema validation (kubernetes-validate) says the objects are well formed;
this says they are what we mean them to be:

- every pod meets the "restricted" Pod Security Standard (non-root, seccomp
  RuntimeDefault, no privilege escalation, all capabilities dropped, only
  the allowed volume types, no host namespaces), and on top of it has a
  read-only root filesystem, no service account token, resource requests
  and a memory limit, and an image with a tag that is not `latest`;
- a pod with fsGroup uses fsGroupChangePolicy OnRootMismatch;
- the Pressroom StatefulSet has exactly one replica (sled: one process per
  data directory);
- every object carries the app.kubernetes.io name, part-of and managed-by
  labels.

Usage: k8s_policy.py RENDERED.yaml
"""

import sys

import yaml

ALLOWED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/managed-by",
)


def pod_spec(obj):
    """The pod spec inside a workload object, or None."""
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return spec.get("template", {}).get("spec")
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    return None


def check_pod(where, pod, problems):
    psc = pod.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{where}: {field} is set")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken must be false")
    if "fsGroup" in psc and psc.get("fsGroupChangePolicy") != "OnRootMismatch":
        problems.append(f"{where}: fsGroup without fsGroupChangePolicy: OnRootMismatch")
    for volume in pod.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= ALLOWED_VOLUMES:
            problems.append(f"{where}: volume {volume['name']} of type {sorted(kinds)}")

    containers = (pod.get("initContainers") or []) + (pod.get("containers") or [])
    if not containers:
        problems.append(f"{where}: no containers")
    for container in containers:
        at = f"{where} container {container.get('name')}"
        csc = container.get("securityContext") or {}

        def effective(field):
            return csc.get(field, psc.get(field))

        if effective("runAsNonRoot") is not True:
            problems.append(f"{at}: runAsNonRoot must be true")
        if effective("runAsUser") == 0:
            problems.append(f"{at}: runAsUser must not be 0")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{at}: seccompProfile must be RuntimeDefault")
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{at}: allowPrivilegeEscalation must be false")
        if csc.get("privileged"):
            problems.append(f"{at}: privileged")
        caps = csc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{at}: capabilities must drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            problems.append(f"{at}: adds capabilities {caps['add']}")
        if csc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{at}: readOnlyRootFilesystem must be true")

        resources = container.get("resources") or {}
        requests = resources.get("requests") or {}
        limits = resources.get("limits") or {}
        if "cpu" not in requests or "memory" not in requests:
            problems.append(f"{at}: needs cpu and memory requests")
        if "memory" not in limits:
            problems.append(f"{at}: needs a memory limit")

        image = container.get("image", "")
        last = image.rsplit("/", 1)[-1]
        if "@" not in last and (":" not in last or last.endswith(":latest")):
            problems.append(f"{at}: image {image!r} needs a tag other than latest")


def main(path):
    with open(path, encoding="utf-8") as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    problems = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        where = f"{obj.get('kind')}/{meta.get('name')}"
        labels = meta.get("labels") or {}
        if obj.get("kind") != "Namespace":
            for label in REQUIRED_LABELS:
                if label not in labels:
                    problems.append(f"{where}: missing label {label}")
        pod = pod_spec(obj)
        if pod is not None:
            check_pod(where, pod, problems)
        if obj.get("kind") == "StatefulSet" and labels.get("app.kubernetes.io/name") == "pressroom":
            if obj["spec"].get("replicas") != 1:
                problems.append(f"{where}: must have exactly 1 replica (sled)")
    for problem in problems:
        print(f"ERROR {problem}")
    if problems:
        return 1
    print(f"{len(objects)} objects follow the rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
