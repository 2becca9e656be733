#!/usr/bin/env bash
# Builds the local cluster's binaries from the Go module proxy into a cache keyed by version:
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/<K8S_VERSION>/bin   kube-apiserver … kubectl
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/etcd-<ETCD_VERSION>/bin/etcd
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/node-<hash of tools/k8s/node>/bin  pause, ociimage
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/provisioner-<hash of its module>/bin/local-volume-provisioner
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/coredns-<COREDNS_VERSION>-<hash of its module>/bin/coredns
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/netpol-<KUBE_ROUTER_VERSION>-<hash of its module>/bin/kube-router
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/traefik-<TRAEFIK_VERSION>-<hash of its module>/bin/traefik
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/metrics-server-<METRICS_SERVER_VERSION>-<hash>/bin/metrics-server
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/prometheus-<PROMETHEUS_VERSION>-<hash of its module>/bin/prometheus
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/kwok-<KWOK_VERSION>-<hash of its module>/bin/kwok
#   ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s/gateway-api-<GATEWAY_API_VERSION>/crds   the standard channel's CRDs
# A binary already in the cache is not rebuilt. Builds run under `nice` because the machine's
# two cores are shared with other builds.
#
# Usage: tools/k8s/build.sh [all|kube|etcd|node|provisioner|coredns|netpol|traefik|metrics-server|
#                             prometheus|kwok|gateway-crds]...   (default: all)
#        tools/k8s/build.sh background   (starts `all` detached, log in ${GOAPP_CACHE}/k8s/background-build.log:
#                                        a caller such as `make test` overlaps the cold build with its other work;
#                                        the cluster's `up` waits for the build lock and finds the binaries)
#        tools/k8s/build.sh print-bin-dirs   (prints KUBE_BIN, ETCD_BIN, NODE_BIN, PROVISIONER_BIN,
#                                             COREDNS_BIN, NETPOL_BIN, TRAEFIK_BIN, METRICS_SERVER_BIN,
#                                             PROMETHEUS_BIN, KWOK_BIN, GATEWAY_CRDS lines)
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
traefik_bin="$cache/k8s/traefik-$TRAEFIK_VERSION-$(src_hash traefik)/bin"
metrics_bin="$cache/k8s/metrics-server-$METRICS_SERVER_VERSION-$(src_hash metrics-server)/bin"
prometheus_bin="$cache/k8s/prometheus-$PROMETHEUS_VERSION-$(src_hash prometheus)/bin"
kwok_bin="$cache/k8s/kwok-$KWOK_VERSION-$(src_hash kwok)/bin"
gateway_crds="$cache/k8s/gateway-api-$GATEWAY_API_VERSION/crds"
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

# The cluster's add-ons: each module is a go.mod with a `tool` line naming the upstream main package.
build_tool() { # module-dir(=binary name) bin-dir upstream-module version main-package extra-ldflags [tags]
  local name=$1 dir=$2 module=$3 version=$4 pkg=$5 ld=$6 tags=${7:-}
  missing "$dir" "$name" || { log "$name cached in $dir"; return 0; }
  require_pin "$here/$name" "$module" "$version"
  mkdir -p "$dir"
  log "building $name $version${tags:+ (tags $tags)}"
  (cd "$here/$name" && CGO_ENABLED=0 nice -n 10 go build -trimpath ${tags:+-tags "$tags"} \
      -ldflags "-s -w $ld" -o "$dir/$name.tmp" "$pkg")
  mv "$dir/$name.tmp" "$dir/$name"
}

build_traefik() {
  build_tool traefik "$traefik_bin" github.com/traefik/traefik/v3 "$TRAEFIK_VERSION" \
    github.com/traefik/traefik/v3/cmd/traefik "-X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION"
}

# Stamped like upstream's Makefile, or it reports v0.0.0-master.
build_metrics_server() {
  build_tool metrics-server "$metrics_bin" sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" \
    sigs.k8s.io/metrics-server/cmd/metrics-server "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
}

# Only the Kubernetes service discovery: remove_all_sd drops every discovery plugin (AWS, Azure, GCE, …
# and their SDKs) but those enabled by name, which saves most of the cold build (README).
build_prometheus() {
  local minor=${PROMETHEUS_VERSION#v0.} release
  # v0.316.0 is release 3.16.0.
  release="$((${minor%%.*} / 100)).$((10#${minor%%.*} % 100)).${minor#*.}"
  build_tool prometheus "$prometheus_bin" github.com/prometheus/prometheus "$PROMETHEUS_VERSION" \
    github.com/prometheus/prometheus/cmd/prometheus "-X github.com/prometheus/common/version.Version=$release" \
    remove_all_sd,enable_kubernetes_sd
}

build_kwok() {
  build_tool kwok "$kwok_bin" sigs.k8s.io/kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
}

# The Gateway API's standard-channel CRDs, from the module zip the proxy serves (no GitHub release here).
fetch_gateway_crds() {
  [[ -z $(find "$gateway_crds" -name '*.yaml' 2>/dev/null) ]] || { log "Gateway API CRDs cached in $gateway_crds"; return 0; }
  local src tmp="$gateway_crds.tmp.$$"
  log "fetching the Gateway API $GATEWAY_API_VERSION CRDs (standard channel)"
  src=$(cd "$here" && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [[ -d $src/config/crd/standard ]] || die "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION has no config/crd/standard"
  mkdir -p "$tmp"; cp "$src"/config/crd/standard/*.yaml "$tmp/"; chmod 644 "$tmp"/*.yaml
  rm -rf "$gateway_crds"; mv "$tmp" "$gateway_crds"
}

case "${1:-all}" in
  print-bin-dirs)
    printf 'KUBE_BIN=%s\nETCD_BIN=%s\nNODE_BIN=%s\nPROVISIONER_BIN=%s\nCOREDNS_BIN=%s\nNETPOL_BIN=%s\n' \
      "$kube_bin" "$etcd_bin" "$node_bin" "$prov_bin" "$coredns_bin" "$netpol_bin"
    printf 'TRAEFIK_BIN=%s\nMETRICS_SERVER_BIN=%s\nPROMETHEUS_BIN=%s\nKWOK_BIN=%s\nGATEWAY_CRDS=%s\n' \
      "$traefik_bin" "$metrics_bin" "$prometheus_bin" "$kwok_bin" "$gateway_crds"
    exit 0 ;;
  background)
    mkdir -p "$cache/k8s"
    # Only stdin, stdout and stderr are handed down: a build inheriting a caller's descriptor (say the lock of
    # `flock FILE make test`) would hold it for as long as it runs.
    (for fd in /proc/"$BASHPID"/fd/*; do fd=${fd##*/}; ((fd <= 2)) || eval "exec $fd>&-" 2>/dev/null || true; done
     exec setsid "$0" all) >>"$cache/k8s/background-build.log" 2>&1 </dev/null &
    log "building in the background (pid $!, log $cache/k8s/background-build.log)"
    exit 0 ;;
esac
[[ $# -gt 0 ]] || set -- all
# Two callers (say `make up` and a test) must not build the same binaries at once.
mkdir -p "$cache/k8s"
exec 8>"$cache/k8s/.build.lock"
flock 8
for what in "$@"; do
  case "$what" in
    all) build_node; build_etcd; build_provisioner; build_coredns; build_netpol; build_kube
         fetch_gateway_crds; build_kwok; build_metrics_server; build_prometheus; build_traefik ;;
    kube) build_kube ;;
    etcd) build_etcd ;;
    node) build_node ;;
    provisioner) build_provisioner ;;
    coredns) build_coredns ;;
    netpol) build_netpol ;;
    traefik) build_traefik ;;
    metrics-server) build_metrics_server ;;
    prometheus) build_prometheus ;;
    kwok) build_kwok ;;
    gateway-crds) fetch_gateway_crds ;;
    *) die "unknown target '$what' (allowed: all, kube, etcd, node, provisioner, coredns, netpol, traefik, \
metrics-server, prometheus, kwok, gateway-crds, print-bin-dirs)" ;;
  esac
done
