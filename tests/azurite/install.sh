#!/usr/bin/env bash
# Install the Azurite storage emulator that the tests run against, into .local/azurite/ of the repo.
#
# The version (and every transitive dependency) is pinned by tests/azurite/package.json and
# tests/azurite/package-lock.json; this script copies both into .local/azurite/ and runs `npm ci` there.
# Idempotent: when the installed tree was made from the same lock file and azurite-blob is present, it does
# nothing. Fails loudly (non-zero exit, message on stderr) on any error.
#
# Azurite 3.35.0 is the newest release whose package declares support for node 20 (3.36+ want node >= 21/22).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dest="$repo/.local/azurite"
stamp="$dest/.installed-lock.sha256"
bin="$dest/node_modules/.bin/azurite-blob"

die() {
    echo "tests/azurite/install.sh: ERROR: $*" >&2
    exit 1
}

want_version="$(sed -n 's/.*"azurite": *"\([0-9.]*\)".*/\1/p' "$here/package.json" | head -n1)"
[ -n "$want_version" ] || die "cannot read the pinned azurite version from $here/package.json"
lock_sum="$(sha256sum "$here/package-lock.json" "$here/package.json" | sha256sum | cut -d' ' -f1)"

if [ -x "$bin" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
    echo "Azurite $want_version already installed in .local/azurite"
    exit 0
fi

# node and npm: present on our machines; on a bare Debian machine install them from Debian's packages.
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "node/npm not found: installing Debian's nodejs and npm"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update || die "apt-get update failed"
        apt-get install -y --no-install-recommends nodejs npm || die "apt-get install nodejs npm failed"
    else
        die "node and npm are required to install Azurite (run as root to have them installed, or install node >= 18)"
    fi
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old for Azurite $want_version (need >= 18)"

echo "Installing Azurite $want_version into .local/azurite (npm ci) ..."
mkdir -p "$dest"
rm -f "$stamp"
cp "$here/package.json" "$here/package-lock.json" "$dest/"
(
    cd "$dest"
    npm ci --no-audit --no-fund --loglevel=warn
) || die "npm ci in $dest failed"

[ -x "$bin" ] || die "npm ci finished but $bin is missing"
got_version="$(node -p "require('$dest/node_modules/azurite/package.json').version")"
[ "$got_version" = "$want_version" ] || die "installed azurite $got_version, expected $want_version"

echo "$lock_sum" >"$stamp"
echo "Azurite $got_version installed: $bin"
