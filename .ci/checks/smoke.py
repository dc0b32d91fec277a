#!/usr/bin/env python3
"""Smoke test: the real binary, started the way the manifests start it.

For each rendered overlay given, takes the Pressroom StatefulSet's container
and reproduces what the kubelet would run:

- the command: the image's ENTRYPOINT (from the Dockerfile) or the
  container's `command`, then its `args`;
- the environment: the image's ENV (Dockerfile), then `envFrom`, then `env`
  (values from the rendered ConfigMaps and Secrets, `$(VAR)` expanded);
- the files: every volumeMount becomes a temporary directory: Secrets and
  ConfigMaps are written out from the rendered objects (so the keys file is
  the example Secret's), the data volume starts empty, and a
  kubernetes.io/tls Secret (a placeholder in the manifests) gets a
  certificate and key made for the test.

Only file paths are changed (each mountPath to its temporary directory),
and a listening port only if it is taken on this machine. Then it checks:

- static agreement: every PRESSROOM_* variable the manifests set is one the
  binary knows (`serve --help`); every absolute path in them lies on a
  volume; container ports, probe ports, Service target ports and
  NetworkPolicy ports are ports the binary listens on; gRPC probes use the
  plaintext health port when TLS is on; terminationGracePeriodSeconds covers
  the preStop sleep plus PRESSROOM_SHUTDOWN_GRACE; the sled cache is well
  under the memory limit; the flags the backup CronJob and restore Job pass
  exist in their subcommands;
- at run time: the startup, liveness and readiness probes' gRPC health
  checks answer SERVING on the port each probe names; the metrics port
  answers GET /metrics with `grpc_server_started_total`; the feeds port, if
  any, refuses GET /feeds/rss without a key (401); on SIGTERM the
  process exits 0 within the time the kubelet allows.

Usage: smoke.py --binary target/debug/pressroom --dockerfile Dockerfile \
           [--restore RESTORE.yaml] NAME=RENDERED.yaml...
"""

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import grpc
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

IMAGE_BINARY = "/usr/local/bin/pressroom"
LISTEN_VARS = ("PRESSROOM_LISTEN", "PRESSROOM_HEALTH_LISTEN", "PRESSROOM_METRICS_LISTEN",
               "PRESSROOM_FEEDS_LISTEN")
STARTUP_CAP_SECONDS = 60
METRIC = "grpc_server_started_total"


class Failure(Exception):
    pass


def log(message):
    print(message, flush=True)


# ---------------------------------------------------------------- parsing


def dockerfile_runtime(path):
    """ENV, ENTRYPOINT, CMD and WORKDIR of the Dockerfile's last stage."""
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    env, entrypoint, cmd, workdir = {}, [], [], "/"
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            env, entrypoint, cmd, workdir = {}, [], [], "/"
        elif word == "ENV":
            for item in shlex.split(rest):
                key, sep, value = item.partition("=")
                if not sep:
                    raise Failure(f"Dockerfile: `ENV {rest}`: use the KEY=VALUE form")
                env[key] = value
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif word == "CMD":
            cmd = json.loads(rest)
        elif word == "WORKDIR":
            workdir = rest.strip()
    return env, entrypoint, cmd, workdir


def load(path):
    with open(path, encoding="utf-8") as f:
        objects = [o for o in yaml.safe_load_all(f) if o]
    index = {}
    for obj in objects:
        index[(obj["kind"], obj["metadata"]["name"])] = obj
    return objects, index


def secret_data(secret):
    data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    data.update({k: v.encode() for k, v in (secret.get("stringData") or {}).items()})
    return data


def configmap_data(configmap):
    data = {k: v.encode() for k, v in (configmap.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (configmap.get("binaryData") or {}).items()})
    return data


def quantity_bytes(text):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text))
    if not match or match.group(2) not in units and match.group(2):
        raise Failure(f"can't read the quantity {text!r}")
    return float(match.group(1)) * units.get(match.group(2), 1)


def duration_seconds(text):
    total, rest = 0.0, text.strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for number, unit in re.findall(r"([0-9.]+)\s*(ms|s|m|h)", rest):
        total += float(number) * units[unit]
    if not re.fullmatch(r"(\s*[0-9.]+\s*(ms|s|m|h))+\s*", rest):
        raise Failure(f"can't read the duration {text!r}")
    return total


def split_hostport(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def expand(text, env):
    """Kubernetes' $(VAR) expansion ($$ escapes)."""
    def one(match):
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


# --------------------------------------------------------------- the pod


def make_tls(directory):
    """A self-signed certificate for localhost / 127.0.0.1; (cert, key) paths."""
    cert, key = os.path.join(directory, "tls.crt"), os.path.join(directory, "tls.key")
    if shutil.which("openssl"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec",
             "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,DNS:pressroom-grpc"],
            check=True, capture_output=True)
        return cert, key
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.DNSName("pressroom-grpc"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(private, hashes.SHA256()))
    with open(cert, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key, "wb") as f:
        f.write(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
    return cert, key


class Pod:
    """One container of a pod template, laid out on this machine."""

    def __init__(self, name, objects, index, pod_spec, container, claim_templates, root, image):
        self.name = name
        self.index = index
        self.spec = pod_spec
        self.container = container
        self.root = root
        self.mounts = {}  # mountPath -> local path
        self.tls_cert = None
        image_env, entrypoint, cmd, workdir = image
        self._lay_out_volumes(claim_templates)
        self.env = self._environment(image_env)
        command = container.get("command") or entrypoint
        args = container.get("args") if "args" in container else (cmd if "command" not in container else [])
        self.argv = [expand(a, self.env) for a in list(command) + list(args or [])]
        self.workdir = self.local(workdir) if self.on_volume(workdir) else root

    # -- files
    def _lay_out_volumes(self, claim_templates):
        volumes = {v["name"]: v for v in self.spec.get("volumes") or []}
        for mount in self.container.get("volumeMounts") or []:
            name = mount["name"]
            local = os.path.join(self.root, "volumes", name)
            if not os.path.isdir(local):
                os.makedirs(local)
                if name in claim_templates:
                    pass  # a new, empty PersistentVolume
                elif name not in volumes:
                    raise Failure(f"{self.name}: volumeMount {name} has no volume")
                else:
                    self._fill(volumes[name], local)
            target = os.path.join(local, mount["subPath"]) if mount.get("subPath") else local
            self.mounts[mount["mountPath"].rstrip("/")] = target

    def _fill(self, volume, local):
        if "secret" in volume:
            ref = volume["secret"]
            secret = self.index.get(("Secret", ref["secretName"]))
            if secret is None:
                raise Failure(f"{self.name}: Secret {ref['secretName']} is not in the manifests")
            data = secret_data(secret)
            if secret.get("type") == "kubernetes.io/tls":
                # The manifests hold a placeholder: make a real pair.
                cert, key = make_tls(tempfile.mkdtemp(dir=self.root))
                data["tls.crt"] = open(cert, "rb").read()
                data["tls.key"] = open(key, "rb").read()
                data.setdefault("ca.crt", data["tls.crt"])
                self.tls_cert = data["tls.crt"]
            self._write(data, ref.get("items"), ref.get("defaultMode", 0o644), local)
        elif "configMap" in volume:
            ref = volume["configMap"]
            configmap = self.index.get(("ConfigMap", ref["name"]))
            if configmap is None:
                raise Failure(f"{self.name}: ConfigMap {ref['name']} is not in the manifests")
            self._write(configmap_data(configmap), ref.get("items"),
                        ref.get("defaultMode", 0o644), local)
        elif "emptyDir" in volume or "persistentVolumeClaim" in volume:
            pass
        else:
            raise Failure(f"{self.name}: volume {volume['name']}: type not supported by the smoke test")

    @staticmethod
    def _write(data, items, mode, local):
        if items:
            data = {item["path"]: data[item["key"]] for item in items}
        for key, value in data.items():
            path = os.path.join(local, key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(value)
            # Readable by us whatever the mode (the pod reads through fsGroup).
            os.chmod(path, mode | 0o400)

    def local_paths_in(self, text):
        """`text` with the mounted paths inside it (e.g. a URL's sslrootcert)
        moved to where the test laid the volumes out."""
        paths = sorted((m["mountPath"].rstrip("/") for m in self.container.get("volumeMounts") or []),
                       key=len, reverse=True)
        if not paths:
            return text
        pattern = "|".join(re.escape(p) + "/" for p in paths)
        # One pass, so that a path moved under /tmp is not moved again.
        return re.sub(pattern, lambda m: self.local(m.group(0)[:-1]) + "/", text)

    def on_volume(self, path):
        return any(path == m or path.startswith(m + "/") for m in self.mounts)

    def local(self, path):
        for mount in sorted(self.mounts, key=len, reverse=True):
            if path == mount or path.startswith(mount + "/"):
                return self.mounts[mount] + path[len(mount):]
        return path

    def manifest_env(self):
        """The variables the manifest sets (not the image's ENV defaults)."""
        names = {i["name"] for i in self.container.get("env") or []}
        return {k: v for k, v in self.env.items() if k not in self.image_env_names or k in names}

    # -- environment
    def _environment(self, image_env):
        env = dict(image_env)
        self.image_env_names = set(image_env)
        for source in self.container.get("envFrom") or []:
            prefix = source.get("prefix", "")
            if "configMapRef" in source:
                obj = self.index.get(("ConfigMap", source["configMapRef"]["name"]))
                data = configmap_data(obj) if obj else None
            else:
                obj = self.index.get(("Secret", source["secretRef"]["name"]))
                data = secret_data(obj) if obj else None
            if data is None:
                raise Failure(f"{self.name}: envFrom names an object not in the manifests: {source}")
            env.update({prefix + k: v.decode() for k, v in data.items()})
        fields = {"metadata.name": "pressroom-0", "metadata.namespace": "smoke",
                  "spec.nodeName": "node", "status.podIP": "127.0.0.1"}
        for item in self.container.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand(item["value"], env)
            elif "valueFrom" in item:
                source = item["valueFrom"]
                if "configMapKeyRef" in source:
                    ref = source["configMapKeyRef"]
                    env[item["name"]] = configmap_data(self.index[("ConfigMap", ref["name"])])[ref["key"]].decode()
                elif "secretKeyRef" in source:
                    ref = source["secretKeyRef"]
                    env[item["name"]] = secret_data(self.index[("Secret", ref["name"])])[ref["key"]].decode()
                elif "fieldRef" in source:
                    path = source["fieldRef"]["fieldPath"]
                    env[item["name"]] = fields.get(path, "smoke-" + re.sub(r"\W+", "-", path))
            else:
                env[item["name"]] = ""
        return env


# ------------------------------------------------------------ the checks


def help_text(binary, *subcommand):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PRESSROOM_")}
    result = subprocess.run([binary, *subcommand, "--help"], capture_output=True, text=True,
                            env=clean, timeout=30)
    if result.returncode != 0:
        return None
    return result.stdout + result.stderr


def check_flags_known(where, binary, argv, env, problems):
    """Every --flag and PRESSROOM_* variable is one the subcommand knows."""
    if not argv or argv[0] != IMAGE_BINARY:
        problems.append(f"{where}: runs {argv[:1]}, not {IMAGE_BINARY}")
        return
    subcommand = argv[1] if len(argv) > 1 else None
    text = help_text(binary, subcommand) if subcommand else None
    if text is None:
        problems.append(f"{where}: `pressroom {subcommand} --help` fails: no such subcommand")
        return
    for arg in argv[2:]:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and not re.search(re.escape(flag) + r"(?![\w-])", text):
            problems.append(f"{where}: `pressroom {subcommand}` has no flag {flag}")
    for name in env:
        if name.startswith("PRESSROOM_") and name not in text:
            problems.append(f"{where}: `pressroom {subcommand}` knows no variable {name}")


def static_checks(pod, statefulset, objects, binary, problems):
    where = pod.name
    env, container, spec = pod.env, pod.container, pod.spec

    check_flags_known(where, binary, pod.argv, env, problems)

    for name, value in env.items():
        if name.startswith("PRESSROOM_") and value.startswith("/") and not pod.on_volume(value):
            problems.append(f"{where}: {name}={value} is on no volume (the root filesystem is read-only)")

    listening = {}
    for var in LISTEN_VARS:
        if var in env:
            listening[split_hostport(env[var])[1]] = var
    named = {}
    for port in container.get("ports") or []:
        named[port.get("name")] = port["containerPort"]
        if port["containerPort"] not in listening:
            problems.append(f"{where}: containerPort {port.get('name')}={port['containerPort']} "
                            f"is not a port the binary listens on ({listening})")
    expected = {"grpc": "PRESSROOM_LISTEN", "health": "PRESSROOM_HEALTH_LISTEN",
                "metrics": "PRESSROOM_METRICS_LISTEN", "feeds": "PRESSROOM_FEEDS_LISTEN"}
    for port_name, var in expected.items():
        if port_name in named and listening.get(named[port_name]) != var:
            problems.append(f"{where}: port {port_name} ({named[port_name]}) is not {var}")

    tls = bool(env.get("PRESSROOM_TLS_CERT"))
    for probe_name in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe = container.get(probe_name)
        if probe is None:
            problems.append(f"{where}: no {probe_name}")
            continue
        if "grpc" not in probe:
            problems.append(f"{where}: {probe_name} is not a gRPC probe")
            continue
        port = probe["grpc"]["port"]
        if port not in listening:
            problems.append(f"{where}: {probe_name} port {port} is not a port the binary listens on")
        elif tls and listening[port] == "PRESSROOM_LISTEN":
            problems.append(f"{where}: {probe_name} uses the TLS port {port}; gRPC probes are plaintext")
        elif listening[port] == "PRESSROOM_METRICS_LISTEN":
            problems.append(f"{where}: {probe_name} uses the metrics port {port}")

    labels = statefulset["spec"]["template"]["metadata"].get("labels") or {}
    for obj in objects:
        if obj["kind"] == "Service":
            selector = obj["spec"].get("selector") or {}
            if not selector or any(labels.get(k) != v for k, v in selector.items()):
                continue
            for port in obj["spec"].get("ports") or []:
                target = port.get("targetPort", port["port"])
                number = named.get(target) if isinstance(target, str) else target
                if number is None or number not in listening:
                    problems.append(f"{where}: Service {obj['metadata']['name']} port "
                                    f"{port.get('name')} targets {target!r}, which the container "
                                    "does not listen on")
        if obj["kind"] == "NetworkPolicy":
            selector = (obj["spec"].get("podSelector") or {}).get("matchLabels") or {}
            if any(labels.get(k) != v for k, v in selector.items()):
                continue
            for rule in obj["spec"].get("ingress") or []:
                for port in rule.get("ports") or []:
                    target = port.get("port")
                    number = named.get(target) if isinstance(target, str) else target
                    if number not in listening:
                        problems.append(f"{where}: NetworkPolicy {obj['metadata']['name']} admits "
                                        f"port {target}, which the container does not listen on")

    grace = duration_seconds(env.get("PRESSROOM_SHUTDOWN_GRACE", "10s"))
    pre_stop = (((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
    period = spec.get("terminationGracePeriodSeconds", 30)
    if period < pre_stop + grace + 5:
        problems.append(f"{where}: terminationGracePeriodSeconds {period} < preStop {pre_stop}s + "
                        f"PRESSROOM_SHUTDOWN_GRACE {grace}s + 5s to flush and exit")

    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    cache_mb = int(env.get("PRESSROOM_CACHE_MB", "256"))
    if limit is None:
        problems.append(f"{where}: no memory limit")
    elif cache_mb * 2**20 > quantity_bytes(limit) / 2:
        problems.append(f"{where}: PRESSROOM_CACHE_MB={cache_mb} is more than half the memory limit {limit}")
    return tls, pre_stop, period


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_taken(host, port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host if host not in ("", "::") else "0.0.0.0", port))
        except OSError:
            return True
    return False


def health(port, service, timeout=2.0):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as error:
            return f"{error.code().name}: {error.details()}"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def main_port_health(port, tls_cert):
    if tls_cert:
        credentials = grpc.ssl_channel_credentials(root_certificates=tls_cert)
        channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials,
                                      options=[("grpc.ssl_target_name_override", "localhost")])
    else:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=5)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.RpcError as error:
            return f"{error.code().name}: {error.details()}"


def run_overlay(name, rendered, binary, image, work, external=()):
    objects, index = load(rendered)
    # Secrets made outside the manifests (by CloudNativePG, for the ha
    # overlay): the test stands in for them.
    for secret in external:
        index[("Secret", secret["metadata"]["name"])] = secret
    statefulsets = [o for o in objects if o["kind"] in ("StatefulSet", "Deployment")
                    and (o["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == "pressroom"]
    if len(statefulsets) != 1:
        raise Failure(f"{name}: expected one Pressroom StatefulSet or Deployment, found {len(statefulsets)}")
    statefulset = statefulsets[0]
    spec = statefulset["spec"]["template"]["spec"]
    containers = [c for c in spec["containers"] if c["name"] == "pressroom"] or spec["containers"][:1]
    claim_templates = {t["metadata"]["name"] for t in statefulset["spec"].get("volumeClaimTemplates") or []}
    root = tempfile.mkdtemp(prefix=f"smoke-{name}-", dir=work)
    pod = Pod(f"{name}: {statefulset['kind']}/{statefulset['metadata']['name']}", objects, index, spec,
              containers[0], claim_templates, root, image)

    log(f"\n--- {name}: static checks")
    problems = []
    tls, pre_stop, period = static_checks(pod, statefulset, objects, binary, problems)
    # The other pods that run the same image: the backup CronJob, restore Jobs.
    for obj in objects:
        if obj["kind"] in ("CronJob", "Job"):
            job = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
            for container in job["template"]["spec"]["containers"]:
                if not container["image"].startswith("ghcr.io/example/pressroom"):
                    continue
                other = Pod(f"{name}: {obj['kind']}/{obj['metadata']['name']}", objects, index,
                            job["template"]["spec"], container, set(),
                            tempfile.mkdtemp(prefix="job-", dir=root), image)
                # The image's ENV is meant for `serve`: other subcommands
                # may ignore it, so only what the Job sets itself counts.
                check_flags_known(other.name, binary, other.argv, other.manifest_env(), problems)
    for problem in problems:
        log(f"ERROR {problem}")
    if problems:
        raise Failure(f"{name}: the manifests and the binary disagree ({len(problems)} problems)")
    log("manifests and binary agree")

    # Ports: the manifests' own, unless taken here.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PRESSROOM_") and k not in ("RUST_LOG",)}
    port_map = {}
    for var in LISTEN_VARS:
        if var not in pod.env:
            continue
        host, port = split_hostport(pod.env[var])
        if port_taken(host, port):
            new = free_port()
            log(f"port {port} is taken here: {var} uses {new} instead")
            pod.env[var] = f"{host}:{new}" if ":" not in host else f"[{host}]:{new}"
            port_map[port] = new
        else:
            port_map[port] = port
    for key, value in pod.env.items():
        env[key] = pod.local(value) if value.startswith("/") else pod.local_paths_in(value)
    argv = [binary] + [pod.local(a) if a.startswith("/") else a for a in pod.argv[1:]]
    shown = {k: v for k, v in env.items() if k.startswith("PRESSROOM_") or k == "RUST_LOG"}
    log(f"\n--- {name}: starting {' '.join(shlex.quote(a) for a in argv)}")
    for key in sorted(shown):
        log(f"    {key}={shown[key]}")

    log_path = os.path.join(root, "server.log")
    logfile = open(log_path, "wb")
    process = subprocess.Popen(argv, env=env, cwd=pod.workdir, stdout=logfile,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)

    def server_log():
        logfile.flush()
        with open(log_path, "rb") as f:
            lines = f.read().decode(errors="replace").splitlines()
        return "\n".join("    | " + line for line in lines[-40:])

    try:
        container = pod.container
        startup = container["startupProbe"]
        budget = min(startup.get("initialDelaySeconds", 0)
                     + startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3),
                     STARTUP_CAP_SECONDS)
        probe_port = port_map[startup["grpc"]["port"]]
        service = startup["grpc"].get("service", "")
        deadline = time.monotonic() + budget
        status = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise Failure(f"{name}: the server exited with {process.returncode} while starting:\n"
                              + server_log())
            status = health(probe_port, service, timeout=1)
            if status == "SERVING":
                break
            time.sleep(0.25)
        else:
            raise Failure(f"{name}: startupProbe: health check {service!r} on port {probe_port} "
                          f"is not SERVING after {budget}s (last: {status}):\n" + server_log())
        log(f"startupProbe   grpc :{probe_port} service={service!r}: SERVING")

        for probe_name in ("livenessProbe", "readinessProbe"):
            probe = container[probe_name]["grpc"]
            port, service = port_map[probe["port"]], probe.get("service", "")
            status = health(port, service, timeout=container[probe_name].get("timeoutSeconds", 1) + 1)
            if status != "SERVING":
                raise Failure(f"{name}: {probe_name}: health check {service!r} on port {port}: "
                              f"{status}\n" + server_log())
            log(f"{probe_name:<14} grpc :{port} service={service!r}: SERVING")

        main_port = split_hostport(pod.env["PRESSROOM_LISTEN"])[1]
        # Informational (the main port needs TLS and may need a key): it also
        # makes sure at least one RPC was started for the metrics below.
        log(f"gRPC port      :{main_port} ({'TLS' if tls else 'plaintext'}) Health/Check: "
            f"{main_port_health(main_port, pod.tls_cert if tls else None)}")

        if "PRESSROOM_METRICS_LISTEN" in pod.env:
            # (pod.env already holds the port actually used.)
            metrics_port = split_hostport(pod.env["PRESSROOM_METRICS_LISTEN"])[1]
            annotations = statefulset["spec"]["template"]["metadata"].get("annotations") or {}
            path = annotations.get("prometheus.io/path", "/metrics")
            url = f"http://127.0.0.1:{metrics_port}{path}"
            body, error = "", None
            for _ in range(20):
                try:
                    with urllib.request.urlopen(url, timeout=3) as reply:
                        body = reply.read().decode(errors="replace")
                    if METRIC in body:
                        break
                except OSError as e:
                    error = e
                time.sleep(0.25)
            if METRIC not in body:
                raise Failure(f"{name}: GET {url}: no {METRIC} "
                              f"({error or 'got ' + repr(body[:200])})\n" + server_log())
            log(f"metrics        GET :{metrics_port}{path}: has {METRIC}")
        else:
            raise Failure(f"{name}: PRESSROOM_METRICS_LISTEN is not set")

        if "PRESSROOM_FEEDS_LISTEN" in pod.env:
            # The example keys hold placeholder hashes, so no key is known
            # here: the feeds must answer, and refuse a caller without one.
            feeds_port = split_hostport(pod.env["PRESSROOM_FEEDS_LISTEN"])[1]
            url = f"http://127.0.0.1:{feeds_port}/feeds/rss"
            status = None
            for _ in range(20):
                try:
                    with urllib.request.urlopen(url, timeout=3) as reply:
                        status = reply.status
                except urllib.error.HTTPError as e:
                    status = e.code
                except OSError:
                    pass
                if status is not None:
                    break
                time.sleep(0.25)
            if status != 401:
                raise Failure(f"{name}: GET {url} without a key: {status}, not 401\n"
                              + server_log())
            log(f"feeds          GET :{feeds_port}/feeds/rss without a key: 401")

        # The kubelet sends SIGTERM after the preStop sleep, and SIGKILL
        # terminationGracePeriodSeconds after the start of preStop.
        allowed = period - pre_stop
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=allowed)
        except subprocess.TimeoutExpired:
            raise Failure(f"{name}: still running {allowed}s after SIGTERM "
                          "(the kubelet would SIGKILL it):\n" + server_log()) from None
        took = time.monotonic() - started
        if code != 0:
            raise Failure(f"{name}: exited with {code} after SIGTERM:\n" + server_log())
        log(f"SIGTERM        exited 0 after {took:.1f}s (allowed {allowed}s)")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        logfile.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--restore", help="rendered restore Job to check the flags of")
    parser.add_argument("--external-secret", action="append", default=[],
                        metavar="NAME:KEY=FILE",
                        help="a Secret made outside the manifests (e.g. by CloudNativePG)")
    parser.add_argument("overlays", nargs="+", metavar="NAME=RENDERED.yaml")
    args = parser.parse_args()
    external = {}
    for item in args.external_secret:
        name, _, rest = item.partition(":")
        key, _, path = rest.partition("=")
        with open(path, "rb") as f:
            external.setdefault(name, {})[key] = base64.b64encode(f.read()).decode()
    external = [{"kind": "Secret", "metadata": {"name": n}, "data": d} for n, d in external.items()]
    binary = os.path.abspath(args.binary)
    image = dockerfile_runtime(args.dockerfile)
    work = tempfile.mkdtemp(prefix="pressroom-smoke-")
    failures = []
    try:
        for item in args.overlays:
            name, _, rendered = item.partition("=")
            try:
                run_overlay(name, rendered, binary, image, work, external)
                log(f"{name}: passed")
            except Failure as failure:
                log(f"FAIL {failure}")
                failures.append(name)
        if args.restore:
            objects, index = load(args.restore)
            problems = []
            for obj in objects:
                if obj["kind"] == "Job":
                    spec = obj["spec"]["template"]["spec"]
                    for container in spec["containers"]:
                        pod = Pod(f"restore: Job/{obj['metadata']['name']}", objects, index, spec,
                                  container, set(), tempfile.mkdtemp(dir=work), image)
                        check_flags_known(pod.name, binary, pod.argv, pod.manifest_env(),
                                          problems)
            for problem in problems:
                log(f"ERROR {problem}")
            if problems:
                failures.append("restore")
            else:
                log("\nrestore: the Job's flags and variables are the binary's")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        log(f"\nsmoke: FAILED: {', '.join(failures)}")
        return 1
    log("\nsmoke: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
