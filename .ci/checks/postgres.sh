#!/usr/bin/env bash
# Makes sure PostgreSQL 15's server binaries are installed: the tests of the
# PostgreSQL engine run initdb and postgres from /usr/lib/postgresql/15/bin
# in a temp dir of their own (and fail, never skip, without them). Installs
# Debian's postgresql-15 when they are missing, without the default cluster
# the package would otherwise create and start.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

bin=/usr/lib/postgresql/15/bin
if [ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_isready" ]; then
    echo "found in $bin"
    exit 0
fi
[ "$(id -u)" = 0 ] || die "PostgreSQL 15 is missing from $bin: install postgresql-15 (needs root)"
# postgresql-common reads this before it creates (and starts) a cluster.
mkdir -p /etc/postgresql-common
conf=/etc/postgresql-common/createcluster.conf
if ! grep -q '^create_main_cluster' "$conf" 2>/dev/null; then
    echo "create_main_cluster = false" >> "$conf"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold \
    postgresql-15 >/dev/null
[ -x "$bin/postgres" ] || die "postgresql-15 installed, but $bin/postgres is not there"
id postgres >/dev/null || die "postgresql-15 installed, but there is no postgres account"
echo "installed in $bin"
