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
- a Pressroom Deployment (the PostgreSQL store) has at least 2 replicas, no
  volume claims, a PodDisruptionBudget, topology spread over nodes, and its
  PRESSROOM_STORE from the Secret of a CloudNativePG Cluster rendered with
  it; that Cluster has at least 3 instances and required synchronous
  replication;
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


def is_pressroom_server(obj):
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return (labels.get("app.kubernetes.io/name") == "pressroom"
            and labels.get("app.kubernetes.io/component") == "server")


def check_ha(objects, problems):
    """The PostgreSQL-backed Deployment and the database it is wired to."""
    deployments = [o for o in objects if o.get("kind") == "Deployment" and is_pressroom_server(o)]
    clusters = {(o.get("metadata") or {}).get("name"): o for o in objects
                if o.get("kind") == "Cluster" and o.get("apiVersion", "").startswith("postgresql.cnpg.io/")}
    for name, cluster in clusters.items():
        spec = cluster.get("spec") or {}
        if spec.get("instances", 0) < 3:
            problems.append(f"Cluster/{name}: needs at least 3 instances")
        sync = (spec.get("postgresql") or {}).get("synchronous") or {}
        if sync.get("method") not in ("any", "first") or sync.get("number", 0) < 1:
            problems.append(f"Cluster/{name}: needs synchronous replication (method, number >= 1)")
        if sync.get("dataDurability", "required") != "required":
            problems.append(f"Cluster/{name}: dataDurability must be required")
    for deployment in deployments:
        where = f"Deployment/{deployment['metadata']['name']}"
        spec = deployment.get("spec") or {}
        pod = spec.get("template", {}).get("spec") or {}
        if spec.get("replicas", 1) < 2:
            problems.append(f"{where}: needs at least 2 replicas")
        if any("persistentVolumeClaim" in v for v in pod.get("volumes") or []):
            problems.append(f"{where}: replicas must be stateless (no volume claims)")
        keys = {c.get("topologyKey") for c in pod.get("topologySpreadConstraints") or []}
        if "kubernetes.io/hostname" not in keys:
            problems.append(f"{where}: needs a topology spread over kubernetes.io/hostname")
        selector = (spec.get("selector") or {}).get("matchLabels")
        if not any(o.get("kind") == "PodDisruptionBudget"
                   and ((o.get("spec") or {}).get("selector") or {}).get("matchLabels") == selector
                   for o in objects):
            problems.append(f"{where}: no PodDisruptionBudget selects its pods")
        env = {}
        for container in pod.get("containers") or []:
            for var in container.get("env") or []:
                env[var["name"]] = var
        if "PRESSROOM_STORE" not in env:
            problems.append(f"{where}: PRESSROOM_STORE is not set")
        secrets = {(v.get("valueFrom") or {}).get("secretKeyRef", {}).get("name") for v in env.values()}
        if not any(f"{name}-app" in secrets for name in clusters):
            problems.append(f"{where}: takes no connection Secret of a rendered CloudNativePG Cluster")


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
    check_ha(objects, problems)
    for problem in problems:
        print(f"ERROR {problem}")
    if problems:
        return 1
    print(f"{len(objects)} objects follow the rules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
