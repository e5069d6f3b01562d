#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (Debian's postgresql package) and the `postgres` system user exist.
#
# It starts no server: the pytest plugin tests/support/postgres_server.py runs a throw-away one per test session.
# Idempotent. When something is missing: as root it installs Debian's `postgresql`; otherwise it fails in CI
# (CI=true) and only warns locally (the PostgreSQL tests then skip with a message).
set -euo pipefail

in_ci() {
    case "${CI:-}" in
        1 | true | TRUE | True | yes | YES) return 0 ;;
        *) return 1 ;;
    esac
}

have_binaries() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null \
        && compgen -G '/usr/lib/postgresql/*/bin/pg_ctl' >/dev/null
}

have_user() {
    id -u postgres >/dev/null 2>&1
}

if have_binaries && have_user; then
    echo "PostgreSQL server binaries present: $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    msg="PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) or the postgres user are missing, and only root can install them: run \`sudo make postgres\` (apt-get install postgresql)."
    if in_ci; then
        echo "tests/postgres/ensure.sh: ERROR: $msg" >&2
        exit 1
    fi
    echo "tests/postgres/ensure.sh: WARNING: $msg The PostgreSQL tests will be skipped." >&2
    exit 0
fi

echo "Installing Debian's postgresql ..."
export DEBIAN_FRONTEND=noninteractive
apt-get update
# The package's post-install script creates the postgres user and a default cluster; the cluster stays unused.
apt-get install -y --no-install-recommends postgresql

if ! have_binaries; then
    echo "tests/postgres/ensure.sh: ERROR: installed postgresql but /usr/lib/postgresql/*/bin/initdb is still missing" >&2
    exit 1
fi
if ! have_user; then
    echo "tests/postgres/ensure.sh: ERROR: installed postgresql but there is no postgres system user" >&2
    exit 1
fi
echo "PostgreSQL server binaries installed: $(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
