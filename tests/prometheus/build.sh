#!/usr/bin/env bash
# Build prometheus and promtool from the upstream Go module pinned in tests/prometheus/go.mod,
# build controller-gen (tests/prometheus/crdgen/go.mod) and generate the ServiceMonitor and
# PrometheusRule CRDs from the prometheus-operator API types. Binaries go to .local/bin/,
# the CRDs to .local/share/monitoring-crds/ of this checkout.
#
# Idempotent like tests/controlplane/build.sh (tests/gobuild.sh): nothing is rebuilt while the outputs exist and
# the stamp matches the sha256 of both go.mod/go.sum pairs (+ this recipe's version). Finished
# builds are kept in a per-user cache keyed by that hash, so a fresh clone copies them.
#
# Environment:
#   GO                      go binary (default: go on PATH, else /usr/local/go/bin/go)
#   TEMPSWEEP_BIN_DIR       where to put the binaries (default: <repo>/.local/bin)
#   TEMPSWEEP_CRD_DIR       where to put the CRDs (default: <repo>/.local/share/monitoring-crds)
#   TEMPSWEEP_BUILD_CACHE   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tempsweep/prometheus)
#   FORCE=1                 rebuild even if the stamp matches (ignores the binary cache too)
set -euo pipefail

NAME=prometheus
# Bump when the way we build changes (flags, stamps, generator options).
RECIPE_VERSION=1
BINARIES=(prometheus promtool)
CRDS=(monitoring.coreos.com_servicemonitors.yaml monitoring.coreos.com_prometheusrules.yaml)
# shellcheck source=../gobuild.sh
source "$(dirname "${BASH_SOURCE[0]}")/../gobuild.sh"
gobuild_init
crd_dir="${TEMPSWEEP_CRD_DIR:-$repo/.local/share/monitoring-crds}"
gobuild_hash go.mod go.sum crdgen/go.mod crdgen/go.sum

have_all() {  # have_all BINDIR CRDDIR: every output present
    local f
    for f in "${BINARIES[@]}"; do [ -x "$1/$f" ] || return 1; done
    for f in "${CRDS[@]}"; do [ -s "$2/$f" ] || return 1; done
}

if [ "${FORCE:-0}" != 1 ] && have_all "$bin_dir" "$crd_dir" && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
    log "up to date in $bin_dir (hash ${hash:0:12})"
    exit 0
fi

mkdir -p "$crd_dir"
gobuild_lock

install_from() {  # install_from DIR: copy outputs atomically into place
    local f
    for f in "${BINARIES[@]}"; do
        cp "$1/$f" "$bin_dir/.$f.tmp"
        chmod 0755 "$bin_dir/.$f.tmp"
        mv -f "$bin_dir/.$f.tmp" "$bin_dir/$f"
    done
    for f in "${CRDS[@]}"; do
        cp "$1/crds/$f" "$crd_dir/.$f.tmp"
        mv -f "$crd_dir/.$f.tmp" "$crd_dir/$f"
    done
    printf '%s\n' "$hash" > "$stamp"
}

if [ "${FORCE:-0}" != 1 ] && have_all "$cache_dir" "$cache_dir/crds" && [ -f "$cache_dir/.complete" ]; then
    log "copying cached build from $cache_dir"
    install_from "$cache_dir"
    log "installed ${BINARIES[*]} and ${#CRDS[@]} CRDs (from cache, hash ${hash:0:12})"
    exit 0
fi

# --- real build ---------------------------------------------------------------------------
"$go_bin" version >&2
tmp_out="$(mktemp -d "$cache_root/.tmp.XXXXXX")"
trap 'rc=$?; rm -rf "$tmp_out"; [ $rc -eq 0 ] || log "build FAILED (exit $rc)"' EXIT

cd "$here"
prom_module_version="$("$go_bin" list -m -f '{{.Version}}' github.com/prometheus/prometheus)" \
    || die "cannot resolve github.com/prometheus/prometheus from go.mod"
# The Go module v0.MMM.P is Prometheus release v(MMM/100).(MMM%100).P (v0.316.0 = 3.16.0).
[[ "$prom_module_version" =~ ^v0\.([0-9]+)\.([0-9]+)$ ]] || die "unexpected version '$prom_module_version'"
prom_release="$((BASH_REMATCH[1] / 100)).$((BASH_REMATCH[1] % 100)).${BASH_REMATCH[2]}"
log "prometheus module $prom_module_version (release $prom_release); the first build takes a long time"
"$go_bin" mod download

pv=github.com/prometheus/common/version
ldflags="-s -w -X $pv.Version=$prom_release -X $pv.Branch=HEAD -X $pv.Revision=$prom_module_version"
ldflags+=" -X $pv.BuildUser=tempsweep -X $pv.BuildDate=$(date -u +%Y%m%d-%H:%M:%S)"
export CGO_ENABLED=0
start=$SECONDS
# Both main packages in one `go build`: the packages they share are compiled once.
"$go_bin" build -trimpath -ldflags "$ldflags" -o "$tmp_out/" \
    github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool \
    || die "go build of prometheus/promtool failed"
log "built prometheus and promtool in $((SECONDS - start)) s"

cd "$here/crdgen"
"$go_bin" mod download
start=$SECONDS
"$go_bin" build -trimpath -ldflags "-s -w" -o "$tmp_out/controller-gen" sigs.k8s.io/controller-tools/cmd/controller-gen \
    || die "go build of controller-gen failed"
log "built controller-gen in $((SECONDS - start)) s"
# The options prometheus-operator's own Makefile passes (embedded object metadata, v1 CRDs);
# run from this module so the API package resolves at the pinned version.
mkdir -p "$tmp_out/all-crds" "$tmp_out/crds"
"$tmp_out/controller-gen" crd:crdVersions=v1,generateEmbeddedObjectMeta=true \
    paths=github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1 \
    output:crd:dir="$tmp_out/all-crds" || die "controller-gen failed"
for f in "${CRDS[@]}"; do
    [ -s "$tmp_out/all-crds/$f" ] || die "controller-gen did not write $f (wrote: $(ls "$tmp_out/all-crds"))"
    cp "$tmp_out/all-crds/$f" "$tmp_out/crds/$f"
done
rm -rf "$tmp_out/all-crds"

"$tmp_out/prometheus" --version >&2 || die "the built prometheus does not run"
"$tmp_out/promtool" --version >&2 || die "the built promtool does not run"

touch "$tmp_out/.complete"
rm -rf "$cache_dir"
mv "$tmp_out" "$cache_dir"
install_from "$cache_dir"
log "installed ${BINARIES[*]} into $bin_dir and CRDs into $crd_dir; cached in $cache_dir"

gobuild_prune 2
