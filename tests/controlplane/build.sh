#!/usr/bin/env bash
# Build the test control plane (etcd, kube-apiserver, kube-controller-manager, kubectl) from the upstream Go modules
# pinned in tests/controlplane/go.mod, into .local/bin/ of this checkout.
#
# Idempotent (tests/gobuild.sh): nothing is rebuilt while the binaries exist and the stamp file
# matches the sha256 of go.mod + go.sum (+ this recipe's version). Finished builds are also kept
# in a per-user cache outside the checkout, keyed by the same hash, so a fresh clone on the same
# machine (CI) copies them instead of compiling for half an hour.
#
# Environment:
#   GO                      go binary (default: go on PATH, else /usr/local/go/bin/go)
#   TEMPSWEEP_BIN_DIR       where to put the binaries (default: <repo>/.local/bin)
#   TEMPSWEEP_BUILD_CACHE   binary cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tempsweep/controlplane)
#   FORCE=1                 rebuild even if the stamp matches (ignores the binary cache too)
set -euo pipefail

NAME=controlplane
# Bump when the way we build changes (flags, stamps), so old binaries and caches are not reused.
RECIPE_VERSION=2
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl)
# shellcheck source=../gobuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gobuild.sh"
gobuild_init
gobuild_hash go.mod go.sum

have_all() {  # have_all DIR: all binaries present and executable in DIR
    local b
    for b in "${BINARIES[@]}"; do [ -x "$1/$b" ] || return 1; done
}

if [ "${FORCE:-0}" != 1 ] && have_all "$bin_dir" && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    log "up to date in $bin_dir (hash ${hash:0:12})"
    exit 0
fi

gobuild_lock

install_from() {  # install_from DIR: copy binaries atomically into bin_dir
    local b
    for b in "${BINARIES[@]}"; do
        cp "$1/$b" "$bin_dir/.$b.tmp"
        chmod 0755 "$bin_dir/.$b.tmp"
        mv -f "$bin_dir/.$b.tmp" "$bin_dir/$b"
    done
    printf '%s\n' "$hash" > "$stamp"
}

if [ "${FORCE:-0}" != 1 ] && have_all "$cache_dir" && [ -f "$cache_dir/.complete" ]; then
    log "copying cached binaries from $cache_dir"
    install_from "$cache_dir"
    log "installed ${BINARIES[*]} into $bin_dir (from cache, hash ${hash:0:12})"
    exit 0
fi

# --- real build ---------------------------------------------------------------------------
cd "$here"
"$go_bin" version >&2
log "building ${BINARIES[*]} from $here/go.mod (hash ${hash:0:12}); the first build takes a long time"

modver() { "$go_bin" list -m -f '{{.Version}}' "$1"; }
kube_version="$(modver k8s.io/kubernetes)" || die "cannot resolve k8s.io/kubernetes from go.mod"
etcd_version="$(modver go.etcd.io/etcd/server/v3)" || die "cannot resolve go.etcd.io/etcd/server/v3 from go.mod"
[[ "$kube_version" =~ ^v([0-9]+)\.([0-9]+)\.[0-9]+$ ]] || die "unexpected kubernetes version '$kube_version'"
kube_major="${BASH_REMATCH[1]}"
kube_minor="${BASH_REMATCH[2]}"
build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
log "kubernetes $kube_version, etcd $etcd_version"

log "downloading modules (go mod download)"
"$go_bin" mod download

kube_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    kube_ldflags+=" -X $pkg.gitVersion=$kube_version"
    kube_ldflags+=" -X $pkg.gitMajor=$kube_major"
    kube_ldflags+=" -X $pkg.gitMinor=$kube_minor"
    kube_ldflags+=" -X $pkg.gitTreeState=clean"
    kube_ldflags+=" -X $pkg.buildDate=$build_date"
done

export CGO_ENABLED=0
progress() {  # progress NAME: a line every 100 packages `go build -v` names; any other line (errors) as it is
    local name="$1" n=0 line start=$SECONDS
    while IFS= read -r line; do
        if [[ "$line" =~ ^[^[:space:]:]+$ ]]; then
            n=$((n + 1))
            if (( n % 100 == 0 )); then log "$name: $n packages compiled ($((SECONDS - start)) s)"; fi
        else
            printf '%s\n' "$line" >&2
        fi
    done
}

build_one() {  # build_one NAME PACKAGE LDFLAGS
    local name="$1" pkg="$2" ldflags="$3" start=$SECONDS
    log "building $name from $pkg"
    # -v names each package as it is compiled (a first build compiles a few thousand): progress
    "$go_bin" build -v -trimpath -ldflags "$ldflags" -o "$bin_dir/.$name.tmp" "$pkg" 2>&1 | progress "$name" \
        || die "go build of $name ($pkg) failed"
    mv -f "$bin_dir/.$name.tmp" "$bin_dir/$name"
    log "built $name in $((SECONDS - start)) s"
}

# One binary at a time: each link needs about 2 GiB.
build_one etcd go.etcd.io/etcd/server/v3 "-s -w"
build_one kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build_one kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
build_one kubectl k8s.io/kubernetes/cmd/kubectl "$kube_ldflags"

# Sanity: the binaries run and report the pinned versions.
# (Capture first, then print: `cmd | head -1` would die of SIGPIPE under pipefail.)
etcd_says="$("$bin_dir/etcd" --version)" || die "the built etcd does not run"
printf '%s\n' "${etcd_says%%$'\n'*}" >&2
"$bin_dir/kube-apiserver" --version >&2 || die "the built kube-apiserver does not run"
"$bin_dir/kube-controller-manager" --version >&2 || die "the built kube-controller-manager does not run"
client_json="$("$bin_dir/kubectl" version --client -o json)" || die "the built kubectl does not run"
client_version="$(printf '%s\n' "$client_json" | sed -n 's/^ *"gitVersion": "\(.*\)",*$/\1/p')"
[ "$client_version" = "$kube_version" ] || die "kubectl reports '$client_version', expected $kube_version"
log "kubectl $client_version"

# Fill the per-user cache (atomically: a partial directory is never marked complete).
tmp_cache="$(mktemp -d "$cache_root/.tmp.XXXXXX")"
for b in "${BINARIES[@]}"; do cp "$bin_dir/$b" "$tmp_cache/$b"; done
touch "$tmp_cache/.complete"
rm -rf "$cache_dir"
mv "$tmp_cache" "$cache_dir"
printf '%s\n' "$hash" > "$stamp"
log "installed ${BINARIES[*]} into $bin_dir; cached in $cache_dir"

# Keep the three most recent builds in the cache (about 190 MB each without kube-controller-manager).
gobuild_prune 3
