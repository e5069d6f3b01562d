#!/usr/bin/env bash
# Build helm from the upstream Go module pinned in tests/helm/go.mod (helm.sh/helm/v4), into
# .local/bin/ of this checkout, for the chart's tests (helm lint, helm template, helm install into
# the test control plane). Never a release binary: only the Go module proxy is used.
#
# Idempotent like tests/controlplane/build.sh (tests/gobuild.sh): nothing is rebuilt while the
# binary exists and the stamp matches the sha256 of go.mod + go.sum (+ this recipe's version);
# finished builds are kept in a per-user cache keyed by that hash, so a fresh clone copies them.
#
# Environment:
#   GO                      go binary (default: go on PATH, else /usr/local/go/bin/go; Go >= 1.26)
#   TEMPSWEEP_BIN_DIR       where to put the binary (default: <repo>/.local/bin)
#   TEMPSWEEP_BUILD_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tempsweep/helm)
#   FORCE=1                 rebuild even if the stamp matches (ignores the cache too)
set -euo pipefail

NAME=helm
# Bump when the way we build changes (flags, stamps).
RECIPE_VERSION=1
# shellcheck source=../gobuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gobuild.sh"
gobuild_init
gobuild_hash go.mod go.sum

if [ "${FORCE:-0}" != 1 ] && [ -x "$bin_dir/helm" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    log "up to date in $bin_dir (hash ${hash:0:12})"
    exit 0
fi

gobuild_lock

install_from() {  # install_from DIR: copy the binary atomically into bin_dir
    cp "$1/helm" "$bin_dir/.helm.tmp"
    chmod 0755 "$bin_dir/.helm.tmp"
    mv -f "$bin_dir/.helm.tmp" "$bin_dir/helm"
    printf '%s\n' "$hash" > "$stamp"
}

if [ "${FORCE:-0}" != 1 ] && [ -x "$cache_dir/helm" ] && [ -f "$cache_dir/.complete" ]; then
    log "copying the cached build from $cache_dir"
    install_from "$cache_dir"
    log "installed helm (from cache, hash ${hash:0:12})"
    exit 0
fi

# --- real build ---------------------------------------------------------------------------
"$go_bin" version >&2
tmp_out="$(mktemp -d "$cache_root/.tmp.XXXXXX")"
trap 'rc=$?; rm -rf "$tmp_out"; [ $rc -eq 0 ] || log "build FAILED (exit $rc)"' EXIT

cd "$here"
version="$("$go_bin" list -m -f '{{.Version}}' helm.sh/helm/v4)" || die "cannot resolve helm.sh/helm/v4 from go.mod"
[[ "$version" =~ ^v4\.[0-9]+\.[0-9]+$ ]] || die "unexpected helm version '$version'"
log "helm $version from the Go module (hash ${hash:0:12})"
"$go_bin" mod download

# The stamps Helm's own Makefile sets for a tagged release (the version `helm version` reports).
hv=helm.sh/helm/v4/internal/version
ldflags="-s -w -X $hv.version=$version -X $hv.metadata= -X $hv.gitTreeState=clean"
export CGO_ENABLED=0
start=$SECONDS
"$go_bin" build -trimpath -ldflags "$ldflags" -o "$tmp_out/helm" helm.sh/helm/v4/cmd/helm \
    || die "go build of helm failed"
log "built helm in $((SECONDS - start)) s"

says="$("$tmp_out/helm" version --template '{{.Version}}')" || die "the built helm does not run"
[ "$says" = "$version" ] || die "helm reports '$says', expected $version"

touch "$tmp_out/.complete"
rm -rf "$cache_dir"
mv "$tmp_out" "$cache_dir"
install_from "$cache_dir"
log "installed helm $version into $bin_dir; cached in $cache_dir"

gobuild_prune 2
