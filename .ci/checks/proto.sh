#!/usr/bin/env bash
# The API definition: `buf lint` (STANDARD rules, exceptions in buf.yaml) and
# `buf breaking` (FILE rules) against the previous commit, so a change that
# would break existing callers fails CI.
#
# The commit compared against is HEAD~1 (the previous commit of main when CI
# runs on a fresh clone of main); set PROTO_BREAKING_AGAINST to another git
# ref to compare against that instead (e.g. the merge base of a branch).
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/checks/lib.sh

step "proto: install buf"
pip_install "buf-bin==$BUF_BIN_VERSION"
buf --version

step "proto: buf lint"
buf lint

against="${PROTO_BREAKING_AGAINST:-HEAD~1}"
step "proto: buf breaking against $against"
if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "not a git work tree: skipping buf breaking"
    exit 0
fi
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
    # A shallow clone may lack the previous commit: fetch one more.
    if [ "$(git rev-parse --is-shallow-repository)" = true ]; then
        echo "$against is not in this shallow clone: git fetch --deepen=1"
        git fetch --quiet --deepen=1 || true
    fi
fi
if ! git rev-parse --verify --quiet "$against^{commit}" >/dev/null; then
    echo "no commit $against (first commit?): skipping buf breaking"
elif [ -z "$(git ls-tree -d "$against" proto)" ]; then
    echo "$against has no proto/ directory: skipping buf breaking"
else
    # subdir=proto: the module root, so file paths (pressroom/v1/...) match
    # whether or not that commit already had buf.yaml.
    buf breaking --against ".git#ref=$(git rev-parse "$against"),subdir=proto"
    echo "no breaking changes against $against"
fi

printf '\nproto: all checks passed\n'
