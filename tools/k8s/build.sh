#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy into a cache keyed by version:
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/<K8S_VERSION>/bin   kube-apiserver … kubectl
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/etcd-<ETCD_VERSION>/bin/etcd
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/node-<hash of tools/k8s/node>/bin  pause, ociimage
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/provisioner-<hash of its module>/bin/local-volume-provisioner
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/coredns-<COREDNS_VERSION>-<hash of its module>/bin/coredns
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/netpol-<KUBE_ROUTER_VERSION>-<hash of its module>/bin/kube-router
# A binary already in the cache is not rebuilt. Builds run under `nice` because the machine's
# two cores are shared with other builds.
#
# Usage: tools/k8s/build.sh [all|kube|etcd|node|provisioner|coredns|netpol]...   (default: all)
#        tools/k8s/build.sh print-bin-dirs   (prints KUBE_BIN, ETCD_BIN, NODE_BIN, PROVISIONER_BIN,
#                                             COREDNS_BIN, NETPOL_BIN lines)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=/dev/null
source "$repo/versions.env"
cache=${GOAPP_CACHE:-$HOME/.cache/goapp}

kube_bin="$cache/k8s/$K8S_VERSION/bin"
etcd_bin="$cache/k8s/etcd-$ETCD_VERSION/bin"
# Our own modules are keyed by a hash of their sources, so an edit rebuilds them.
src_hash() { (cd "$here/$1" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0 |
  LC_ALL=C sort -z | xargs -0 cat | sha256sum | cut -c1-12); }
node_bin="$cache/k8s/node-$(src_hash node)/bin"
prov_bin="$cache/k8s/provisioner-$(src_hash provisioner)/bin"
coredns_bin="$cache/k8s/coredns-$COREDNS_VERSION-$(src_hash coredns)/bin"
netpol_bin="$cache/k8s/netpol-$KUBE_ROUTER_VERSION-$(src_hash netpol)/bin"
kube_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

log() { printf '[k8s-build] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# The go.mod files pin the same versions as versions.env; a mismatch would silently build
# something other than what the project says it runs.
require_pin() { # module-dir module version
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$2 $3( |$)" "$1/go.mod" ||
    die "$1/go.mod does not require $2 $3 (versions.env pins $3); update both together"
}

missing() { # dir names...
  local d=$1 n; shift
  for n in "$@"; do [[ -x "$d/$n" ]] || return 0; done
  return 1
}

build_kube() {
  missing "$kube_bin" "${kube_cmds[@]}" || { log "kube binaries cached in $kube_bin"; return 0; }
  require_pin "$here/kube" k8s.io/kubernetes "$K8S_VERSION"
  local v=${K8S_VERSION#v} major minor ld="" key pkgs=() c tmp
  major=${v%%.*}; minor=${v#*.}; minor=${minor%%.*}
  # Same stamps as upstream's hack/lib/version.sh, so clients and `kubectl version` see the release.
  for key in "gitVersion=$K8S_VERSION" "gitMajor=$major" "gitMinor=$minor" "gitTreeState=clean" \
             "buildDate=$(date -u +%Y-%m-%dT%H:%M:%SZ)"; do
    ld+=" -X k8s.io/component-base/version.$key -X k8s.io/client-go/pkg/version.$key"
  done
  for c in "${kube_cmds[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
  tmp="$kube_bin.tmp.$$"; mkdir -p "$tmp"
  log "building ${kube_cmds[*]} $K8S_VERSION (cold: tens of minutes on 2 cores)"
  # Upstream release flags: static, stripped, trimmed, with the tags of hack/lib/golang.sh.
  (cd "$here/kube" && CGO_ENABLED=0 nice -n 10 go build -trimpath -tags selinux,notest,grpcnotrace \
      -ldflags "-s -w$ld" -o "$tmp/" "${pkgs[@]}")
  mkdir -p "$kube_bin"; mv "$tmp"/* "$kube_bin/"; rmdir "$tmp"
  log "kube binaries in $kube_bin"
}

build_etcd() {
  missing "$etcd_bin" etcd || { log "etcd cached in $etcd_bin"; return 0; }
  require_pin "$here/etcd" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  mkdir -p "$etcd_bin"
  log "building etcd $ETCD_VERSION"
  (cd "$here/etcd" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$etcd_bin/etcd.tmp" .)
  mv "$etcd_bin/etcd.tmp" "$etcd_bin/etcd"
}

build_node() {
  missing "$node_bin" pause ociimage || { log "node tools cached in $node_bin"; return 0; }
  require_pin "$here/node" github.com/google/go-containerregistry "$GGCR_VERSION"
  mkdir -p "$node_bin"
  log "building pause and ociimage"
  (cd "$here/node" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$node_bin/" ./cmd/pause ./cmd/ociimage)
}

build_provisioner() {
  missing "$prov_bin" local-volume-provisioner || { log "provisioner cached in $prov_bin"; return 0; }
  mkdir -p "$prov_bin"
  log "building local-volume-provisioner"
  (cd "$here/provisioner" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$prov_bin/local-volume-provisioner.tmp" .)
  mv "$prov_bin/local-volume-provisioner.tmp" "$prov_bin/local-volume-provisioner"
}

build_coredns() {
  missing "$coredns_bin" coredns || { log "coredns cached in $coredns_bin"; return 0; }
  require_pin "$here/coredns" github.com/coredns/coredns "$COREDNS_VERSION"
  mkdir -p "$coredns_bin"
  log "building coredns $COREDNS_VERSION"
  (cd "$here/coredns" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$coredns_bin/coredns.tmp" .)
  mv "$coredns_bin/coredns.tmp" "$coredns_bin/coredns"
}

# kube-router's network policy controller; its module is a go.mod with a `tool` line (no code of ours).
build_netpol() {
  missing "$netpol_bin" kube-router || { log "kube-router cached in $netpol_bin"; return 0; }
  require_pin "$here/netpol" github.com/cloudnativelabs/kube-router/v2 "$KUBE_ROUTER_VERSION"
  mkdir -p "$netpol_bin"
  log "building kube-router $KUBE_ROUTER_VERSION (network policy controller)"
  (cd "$here/netpol" && CGO_ENABLED=0 nice -n 10 go build -trimpath \
      -ldflags "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=$KUBE_ROUTER_VERSION" \
      -o "$netpol_bin/kube-router.tmp" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router)
  mv "$netpol_bin/kube-router.tmp" "$netpol_bin/kube-router"
}

case "${1:-all}" in
  print-bin-dirs)
    printf 'KUBE_BIN=%s\nETCD_BIN=%s\nNODE_BIN=%s\nPROVISIONER_BIN=%s\nCOREDNS_BIN=%s\nNETPOL_BIN=%s\n' \
      "$kube_bin" "$etcd_bin" "$node_bin" "$prov_bin" "$coredns_bin" "$netpol_bin"
    exit 0 ;;
esac
[[ $# -gt 0 ]] || set -- all
# Two callers (say `make up` and a test) must not build the same binaries at once.
mkdir -p "$cache/k8s"
exec 8>"$cache/k8s/.build.lock"
flock 8
for what in "$@"; do
  case "$what" in
    all) build_node; build_etcd; build_provisioner; build_coredns; build_netpol; build_kube ;;
    kube) build_kube ;;
    etcd) build_etcd ;;
    node) build_node ;;
    provisioner) build_provisioner ;;
    coredns) build_coredns ;;
    netpol) build_netpol ;;
    *) die "unknown target '$what' (allowed: all, kube, etcd, node, provisioner, coredns, netpol, print-bin-dirs)" ;;
  esac
done
