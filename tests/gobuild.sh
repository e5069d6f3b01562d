# Shared steps of the scripts that build upstream tools from Go modules for the tests
# (tests/controlplane/build.sh, tests/prometheus/build.sh, tests/helm/build.sh). Sourced, not run.
#
# Each build is keyed by the sha256 of its recipe version and its go.mod/go.sum files. A stamp in the
# bin directory says which build is installed there; finished builds are kept in a per-user cache
# keyed by the same hash, so a fresh clone on the same machine (CI) copies them instead of compiling;
# a lock on the cache root makes a second build of the same tool wait for the first.
#
# The sourcing script sets NAME (log prefix, stamp and cache name) and RECIPE_VERSION, then calls:
#   gobuild_init             here, repo, bin_dir, cache_root, stamp, go_bin; log/die; a FAILED line on exit
#   gobuild_hash FILE...     hash (of RECIPE_VERSION and FILEs, relative to here) and cache_dir
#   gobuild_lock             mkdir the bin and cache roots, then wait for the cache root's lock
#   gobuild_prune KEEP       delete all but the KEEP newest cached builds
# Environment: GO, TEMPSWEEP_BIN_DIR, TEMPSWEEP_BUILD_CACHE, FORCE=1 (see each script's header).

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$NAME" "$*" >&2; exit 1; }

gobuild_init() {
    here="$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)"
    repo="$(cd "$here/../.." && pwd)"
    bin_dir="${TEMPSWEEP_BIN_DIR:-$repo/.local/bin}"
    cache_root="${TEMPSWEEP_BUILD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tempsweep/$NAME}"
    stamp="$bin_dir/.$NAME.stamp"
    trap 'rc=$?; [ $rc -eq 0 ] || log "build FAILED (exit $rc)"' EXIT
    if [ -n "${GO:-}" ]; then go_bin="$GO"
    elif command -v go >/dev/null 2>&1; then go_bin="$(command -v go)"
    elif [ -x /usr/local/go/bin/go ]; then go_bin=/usr/local/go/bin/go
    else die "Go is not installed (set GO=/path/to/go)"
    fi
}

gobuild_hash() {
    local f
    for f in "$@"; do [ -f "$here/$f" ] || die "missing $here/$f"; done
    hash="$( { printf 'recipe %s\n' "$RECIPE_VERSION"; for f in "$@"; do cat "$here/$f"; done; } \
             | sha256sum | cut -c1-64)"
    cache_dir="$cache_root/$hash"
}

gobuild_lock() {
    mkdir -p "$bin_dir" "$cache_root"
    # One build at a time on this machine (a checkout and a CI clone may race); the loser then
    # finds the cache filled.
    exec 9>"$cache_root/.lock"
    if ! flock -n 9; then
        log "another build holds $cache_root/.lock; waiting for it"
        flock 9
    fi
}

gobuild_prune() {
    find "$cache_root" -mindepth 1 -maxdepth 1 -type d -name '[0-9a-f]*' -printf '%T@ %p\n' \
        | sort -rn | tail -n +"$(( $1 + 1 ))" | cut -d' ' -f2- | while read -r old; do
            log "pruning old cached build $old"
            rm -rf "$old"
        done
}
