#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, with minikube's verbs:
#
#   scripts/cluster.sh up               build what is missing, start what is not running, wait for
#                                       the node to be Ready and the default StorageClass to exist
#   scripts/cluster.sh stop             stop every process and pod container, keep all data
#   scripts/cluster.sh delete           stop and remove all cluster state (containers, mounts,
#                                       network namespaces, bridge, iptables chains, data)
#   scripts/cluster.sh status           one line per component; exit 0 only if all run
#   scripts/cluster.sh kubeconfig-path  print the admin kubeconfig's path
#
# Components: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# built from the Go module proxy (tools/k8s/build.sh); Debian's containerd (a separate instance
# from Docker's), runc and CNI plugins; Debian's docker-registry on ${K8S_REGISTRY}; a
# local-volume provisioner behind the default StorageClass; CoreDNS (cluster.local, no forwarding)
# on the node address; socat relaying the node address's API port to the loopback API server, so
# pods reach the API through the kubernetes Service. Every listener is on loopback, except
# the kubelet and the pods, which live on the cluster's own bridge (${POD_CIDR}); pods only get
# routes to that bridge and to the service range, never to other addresses.
#
# State, logs and pid files: ${GOAPP_CACHE:-$HOME/.cache/goapp}/cluster (logs/ holds one log per
# process). Binaries: ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/k8s"
# shellcheck source=/dev/null
source "$repo/versions.env"

CACHE=${GOAPP_CACHE:-$HOME/.cache/goapp}
STATE="$CACHE/cluster"
KUBECONFIG_PATH="$STATE/kubeconfig"
NODE_NAME=goapp-local
BRIDGE=goapp0
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
SERVICE_API_IP=10.96.0.1
PROVISIONER_NAME=goapp.local/local-volume
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
ETCD_CLIENT=127.0.0.1:2379
ETCD_PEER=127.0.0.1:2380
UP_TIMEOUT=${CLUSTER_UP_TIMEOUT:-300}
# Start order; stop goes in reverse.
COMPONENTS=(registry etcd containerd kube-apiserver api-bridge kube-controller-manager kube-scheduler kubelet kube-proxy provisioner coredns)
COREDNS_READY_PORT=18181
DEB_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack docker-registry socat openssl gettext-base curl iproute2 util-linux)

log() { printf '[cluster] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

load_bins() {
  eval "$("$tools/build.sh" print-bin-dirs)"
  KUBECTL="$KUBE_BIN/kubectl"
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }
ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }

# ---------------------------------------------------------------- prerequisites

ensure_root() { [[ $(id -u) == 0 ]] || die "needs root (kubelet, containerd and iptables manage the host)"; }

ensure_packages() {
  local missing=() p
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  # policy-rc.d keeps the packages' own services (system containerd, docker-registry on :5000 on
  # every interface) from starting: this script runs its own instances.
  local policy=/usr/sbin/policy-rc.d created=""
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" ||
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"; }
  [[ -z $created ]] || rm -f "$policy"
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$STATE/run/$1.pid"; }

running() { # component -> exit 0 if its recorded process is alive and is still that binary
  local f pid
  f=$(pidfile "$1"); [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ -n $pid && -d /proc/$pid ]] || return 1
  grep -qa -- "$(basename "$(cmd_of "$1" | head -n1)")" "/proc/$pid/cmdline" 2>/dev/null
}

cmd_of() { # component -> its command line, one argument per line
  case "$1" in
    registry) printf '%s\n' /usr/bin/docker-registry serve "$STATE/config/registry.yml" ;;
    etcd) printf '%s\n' "$ETCD_BIN/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
      --listen-client-urls "http://$ETCD_CLIENT" --advertise-client-urls "http://$ETCD_CLIENT" \
      --listen-peer-urls "http://$ETCD_PEER" --initial-advertise-peer-urls "http://$ETCD_PEER" \
      --initial-cluster "$NODE_NAME=http://$ETCD_PEER" --listen-metrics-urls "" --log-level warn ;;
    containerd) printf '%s\n' /usr/bin/containerd --config "$STATE/config/containerd.toml" ;;
    kube-apiserver) printf '%s\n' "$KUBE_BIN/kube-apiserver" \
      --bind-address 127.0.0.1 --secure-port "$K8S_API_PORT" --advertise-address "$NODE_IP" \
      --etcd-servers "http://$ETCD_CLIENT" \
      --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range 30000-32767 \
      --client-ca-file "$STATE/pki/ca.crt" \
      --tls-cert-file "$STATE/pki/apiserver.crt" --tls-private-key-file "$STATE/pki/apiserver.key" \
      --kubelet-client-certificate "$STATE/pki/apiserver-kubelet-client.crt" \
      --kubelet-client-key "$STATE/pki/apiserver-kubelet-client.key" \
      --kubelet-certificate-authority "$STATE/pki/ca.crt" \
      --kubelet-preferred-address-types InternalIP \
      --service-account-issuer https://kubernetes.default.svc.cluster.local \
      --service-account-key-file "$STATE/pki/sa.pub" --service-account-signing-key-file "$STATE/pki/sa.key" \
      --requestheader-client-ca-file "$STATE/pki/front-proxy-ca.crt" \
      --requestheader-allowed-names front-proxy-client \
      --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
      --requestheader-extra-headers-prefix X-Remote-Extra- \
      --proxy-client-cert-file "$STATE/pki/front-proxy-client.crt" \
      --proxy-client-key-file "$STATE/pki/front-proxy-client.key" \
      --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
      --allow-privileged=true --profiling=false ;;
    # The API server listens on loopback only; the kubernetes Service's endpoint is the node
    # address, so this relay is what lets pods (in-cluster clients) reach it.
    api-bridge) printf '%s\n' /usr/bin/socat "TCP-LISTEN:$K8S_API_PORT,bind=$NODE_IP,reuseaddr,fork" \
      "TCP:127.0.0.1:$K8S_API_PORT" ;;
    kube-controller-manager) printf '%s\n' "$KUBE_BIN/kube-controller-manager" \
      --kubeconfig "$STATE/controller-manager.kubeconfig" \
      --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
      --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
      --root-ca-file "$STATE/pki/ca.crt" --service-account-private-key-file "$STATE/pki/sa.key" \
      --cluster-signing-cert-file "$STATE/pki/ca.crt" --cluster-signing-key-file "$STATE/pki/ca.key" \
      --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false ;;
    kube-scheduler) printf '%s\n' "$KUBE_BIN/kube-scheduler" \
      --kubeconfig "$STATE/scheduler.kubeconfig" \
      --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
      --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --profiling=false ;;
    kubelet) printf '%s\n' "$KUBE_BIN/kubelet" --config "$STATE/config/kubelet.yaml" \
      --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
      --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" ;;
    kube-proxy) printf '%s\n' "$KUBE_BIN/kube-proxy" --config "$STATE/config/kube-proxy.yaml" ;;
    provisioner) printf '%s\n' "$PROVISIONER_BIN/local-volume-provisioner" \
      -kubeconfig "$STATE/provisioner.kubeconfig" -provisioner "$PROVISIONER_NAME" \
      -node "$NODE_NAME" -base-dir "$STATE/volumes" ;;
    coredns) printf '%s\n' "$COREDNS_BIN/coredns" -conf "$STATE/config/Corefile" ;;
    *) die "unknown component '$1'" ;;
  esac
}

# What a component runs with: its command line and the config files it names. A running
# component whose fingerprint changed (new binary version, edited config) is restarted by `up`.
fingerprint() { # component
  local a
  {
    cmd_of "$1"
    cmd_of "$1" | while read -r a; do [[ $a != "$STATE/config/"* ]] || cat "$a"; done
    [[ $1 != containerd ]] || cat "$STATE"/containerd/certs.d/*/hosts.toml
  } | sha256sum | cut -d' ' -f1
}

# The loopback ports the components listen on. `up` checks them before it starts anything, so that a port held
# by another program (say a second cluster from another GOAPP_CACHE, or a registry on :5000) is named at once
# instead of surfacing minutes later as a component that never becomes ready.
ports_of() { # component -> host:port it binds, one per line
  case "$1" in
    registry) echo "$K8S_REGISTRY" ;;
    etcd) printf '%s\n' "$ETCD_CLIENT" "$ETCD_PEER" ;;
    kube-apiserver) echo "127.0.0.1:$K8S_API_PORT" ;;
    coredns) echo "127.0.0.1:$COREDNS_READY_PORT" ;;
  esac
}

check_ports_free() {
  local c addr listeners holder
  local -a busy=()
  for c in "${COMPONENTS[@]}"; do
    running "$c" && continue
    while read -r addr; do
      [[ -n $addr ]] || continue
      listeners=$(ss -Hltnp "sport = :${addr##*:}")
      [[ -n $listeners ]] || continue
      holder=$(grep -o 'users:(([^)]*))' <<<"$listeners" | head -n 1)
      busy+=("$addr for $c (held by ${holder:-an unknown process})")
    done < <(ports_of "$c")
  done
  ((${#busy[@]} == 0)) || die "port(s) already in use: ${busy[*]}. Stop that program (another goapp cluster: \
GOAPP_CACHE=<its cache> scripts/cluster.sh stop) and run up again; nothing was started"
}

STARTED_NOW=""
start() { # component
  local fp; fp=$(fingerprint "$1")
  if running "$1"; then
    [[ $(cat "$STATE/run/$1.fingerprint" 2>/dev/null) != "$fp" ]] || return 0
    log "$1 runs with an outdated binary or config: restarting it"
    stop_group "$1"
  fi
  STARTED_NOW+=" $1 "
  echo "$fp" >"$STATE/run/$1.fingerprint"
  local -a cmd; mapfile -t cmd < <(cmd_of "$1")
  log "starting $1"
  # setsid: the process outlives this script and its terminal; its log is appended across runs.
  # fd 9 is this script's lock: a daemon inheriting it would hold the lock forever.
  setsid nohup "${cmd[@]}" >>"$STATE/logs/$1.log" 2>&1 </dev/null 9>&- &
  echo $! >"$(pidfile "$1")"
}

stop_group() { # components...: TERM all at once, KILL what is left after 20s
  local c pid i alive
  local -a pids=()
  for c in "$@"; do
    if running "$c"; then
      pid=$(<"$(pidfile "$c")"); pids+=("$pid")
      log "stopping $c (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 100; i++)); do
    alive=0
    for pid in "${pids[@]}"; do [[ ! -d /proc/$pid ]] || alive=1; done
    ((alive)) || break
    sleep 0.2
  done
  for pid in "${pids[@]}"; do
    [[ ! -d /proc/$pid ]] || { log "pid $pid did not stop in 20s: killing"; kill -KILL "$pid" 2>/dev/null || true; }
  done
  for c in "$@"; do rm -f "$(pidfile "$c")" "$STATE/run/$c.fingerprint"; done
}

wait_for() { # description seconds command...
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 2; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "$what not ready after ${secs}s; see $STATE/logs/"
}

# ---------------------------------------------------------------- host network

setup_host_network() {
  # Service traffic between pods on the bridge must pass iptables (kube-proxy's DNAT).
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null || true
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    die "the kernel has no bridge netfilter (br_netfilter): pods could not reach services"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
  # The bridge exists before the kubelet starts, since the node address lives on it.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
}

# ---------------------------------------------------------------- certificates and kubeconfigs

cert() { # name CN O SANs(comma list, may be empty) [server|client] [CA name]
  local name=$1 cn=$2 org=$3 sans=$4 kind=${5:-client} ca=${6:-ca} d="$STATE/pki" ext
  [[ -f $d/$name.crt ]] && return 0
  ext="$d/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ $kind == server ]]; then echo "extendedKeyUsage=serverAuth"; else echo "extendedKeyUsage=clientAuth"; fi
    [[ -z $sans ]] || echo "subjectAltName=$sans"
  } >"$ext"
  openssl genrsa -out "$d/$name.key" 2048 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "/CN=$cn${org:+/O=$org}" -out "$d/$name.csr"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$ext" -out "$d/$name.crt" 2>/dev/null
  rm -f "$d/$name.csr" "$ext"
}

kubeconfig() { # file user cert-name
  local f="$STATE/$1"
  [[ -f $f ]] && return 0
  "$KUBECTL" config set-cluster goapp-local --kubeconfig "$f.tmp" --embed-certs \
    --certificate-authority "$STATE/pki/ca.crt" --server "https://127.0.0.1:$K8S_API_PORT" >/dev/null
  "$KUBECTL" config set-credentials "$2" --kubeconfig "$f.tmp" --embed-certs \
    --client-certificate "$STATE/pki/$3.crt" --client-key "$STATE/pki/$3.key" >/dev/null
  "$KUBECTL" config set-context goapp-local --kubeconfig "$f.tmp" --cluster goapp-local --user "$2" >/dev/null
  "$KUBECTL" config use-context goapp-local --kubeconfig "$f.tmp" >/dev/null
  chmod 600 "$f.tmp"; mv "$f.tmp" "$f"
}

new_ca() { # name CN
  local d="$STATE/pki"
  [[ -f $d/$1.crt ]] && return 0
  openssl genrsa -out "$d/$1.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$d/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$d/$1.crt"
}

setup_pki() {
  local d="$STATE/pki"
  mkdir -p "$d"; chmod 700 "$d"
  [[ -f $d/ca.crt ]] || log "creating the cluster CAs and certificates"
  new_ca ca goapp-local-ca
  # Front-proxy CA, as kubeadm sets up: the API server's request-header authentication, which
  # the controller-manager and scheduler look up at start (and API aggregation uses).
  new_ca front-proxy-ca goapp-local-front-proxy-ca
  cert front-proxy-client front-proxy-client "" "" client front-proxy-ca
  cert apiserver kube-apiserver "" \
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_API_IP" server
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters ""
  cert kubelet "$NODE_NAME" "" "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1" server
  cert admin goapp-admin system:masters ""
  cert controller-manager system:kube-controller-manager "" ""
  cert scheduler system:kube-scheduler "" ""
  cert kubelet-client "system:node:$NODE_NAME" system:nodes ""
  cert kube-proxy system:kube-proxy "" ""
  cert provisioner goapp:local-volume-provisioner "" ""
  cert coredns system:coredns "" ""
  if [[ ! -f $d/sa.key ]]; then
    openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
    openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  fi
  kubeconfig kubeconfig goapp-admin admin
  kubeconfig controller-manager.kubeconfig system:kube-controller-manager controller-manager
  kubeconfig scheduler.kubeconfig system:kube-scheduler scheduler
  kubeconfig kubelet.kubeconfig "system:node:$NODE_NAME" kubelet-client
  kubeconfig kube-proxy.kubeconfig system:kube-proxy kube-proxy
  kubeconfig provisioner.kubeconfig goapp:local-volume-provisioner provisioner
  kubeconfig coredns.kubeconfig system:coredns coredns
}

# ---------------------------------------------------------------- configuration

render() { # template destination
  # Only our own variables are substituted, so a literal $ elsewhere survives.
  STATE=$STATE CONTAINERD_SOCK=$CONTAINERD_SOCK PAUSE_IMAGE=$PAUSE_IMAGE K8S_REGISTRY=$K8S_REGISTRY \
  BRIDGE=$BRIDGE POD_CIDR=$POD_CIDR NODE_IP=$NODE_IP SERVICE_CIDR=$SERVICE_CIDR NODE_NAME=$NODE_NAME \
  K8S_STORAGE_CLASS=$K8S_STORAGE_CLASS PROVISIONER_NAME=$PROVISIONER_NAME COREDNS_READY_PORT=$COREDNS_READY_PORT \
    envsubst '${STATE} ${CONTAINERD_SOCK} ${PAUSE_IMAGE} ${K8S_REGISTRY} ${BRIDGE} ${POD_CIDR} ${NODE_IP} ${SERVICE_CIDR} ${NODE_NAME} ${K8S_STORAGE_CLASS} ${PROVISIONER_NAME} ${COREDNS_READY_PORT}' \
    <"$1" >"$2.tmp"
  mv "$2.tmp" "$2"
}

write_configs() {
  mkdir -p "$STATE"/{config,logs,run,etcd,registry,volumes,kubelet,cni/net.d,cni/ipam} \
    "$STATE/containerd/certs.d/$K8S_REGISTRY" "$STATE/containerd/certs.d/_default"
  chmod 700 "$STATE/etcd"
  local c="$tools/config"
  render "$c/containerd.toml" "$STATE/config/containerd.toml"
  render "$c/registry-hosts.toml" "$STATE/containerd/certs.d/$K8S_REGISTRY/hosts.toml"
  render "$c/default-hosts.toml" "$STATE/containerd/certs.d/_default/hosts.toml"
  render "$c/cni-bridge.conflist" "$STATE/cni/net.d/10-goapp-bridge.conflist"
  render "$c/kubelet.yaml" "$STATE/config/kubelet.yaml"
  render "$c/kube-proxy.yaml" "$STATE/config/kube-proxy.yaml"
  render "$c/registry.yml" "$STATE/config/registry.yml"
  render "$c/Corefile" "$STATE/config/Corefile"
  render "$tools/manifests/storage.yaml" "$STATE/config/storage.yaml"
  render "$tools/manifests/dns.yaml" "$STATE/config/dns.yaml"
}

import_pause_image() {
  ctr_k8s images ls -q | grep -qxF "$PAUSE_IMAGE" && return 0
  log "importing the sandbox image $PAUSE_IMAGE"
  local tar="$STATE/run/pause-image.tar"
  # uid 65535 like upstream's pause image: the sandbox never needs root.
  "$NODE_BIN/ociimage" -binary "$NODE_BIN/pause" -path /pause -tag "$PAUSE_IMAGE" -user 65535:65535 -out "$tar"
  ctr_k8s images import "$tar" >/dev/null
  rm -f "$tar"
}

# Also in the local registry: should image garbage collection ever remove the sandbox image,
# containerd pulls it back from there instead of failing every new pod.
push_pause_image() {
  local repo_tag=${PAUSE_IMAGE#"$K8S_REGISTRY"/}
  curl -fsS "http://$K8S_REGISTRY/v2/${repo_tag%:*}/tags/list" 2>/dev/null | grep -q "\"${repo_tag##*:}\"" && return 0
  "$NODE_BIN/ociimage" -binary "$NODE_BIN/pause" -path /pause -tag "$PAUSE_IMAGE" -user 65535:65535 -push
}

# ---------------------------------------------------------------- verbs

node_ready_since() { # RFC 3339 UTC time
  local ready
  ready=$(kc get node "$NODE_NAME" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}')
  [[ ${ready%% *} == True && ! ${ready#* } < $1 ]]
}

cmd_up() {
  local started; started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ensure_root
  ensure_packages
  "$tools/build.sh" all
  load_bins
  PAUSE_IMAGE="$K8S_REGISTRY/goapp/pause:$(basename "$(dirname "$NODE_BIN")" | sed 's/^node-//')"
  mkdir -p "$STATE"
  exec 9>"$STATE/.lock"; flock -w 600 9 || die "another cluster.sh holds $STATE/.lock"
  check_ports_free
  setup_host_network
  write_configs
  setup_pki

  start registry
  start etcd
  start containerd
  wait_for "registry on $K8S_REGISTRY" 30 curl -fsS "http://$K8S_REGISTRY/v2/"
  wait_for etcd 60 curl -fsS "http://$ETCD_CLIENT/health"
  wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version
  import_pause_image
  push_pause_image

  start kube-apiserver
  wait_for kube-apiserver 120 kc get --raw /readyz
  start api-bridge
  start kube-controller-manager
  start kube-scheduler
  start kubelet
  start kube-proxy
  # RBAC first, so the provisioner and CoreDNS never start without their permissions.
  kc apply --server-side --force-conflicts -f "$STATE/config/storage.yaml" -f "$STATE/config/dns.yaml" >/dev/null
  start provisioner
  start coredns

  log "waiting for node $NODE_NAME to be Ready"
  # After a stop the node object still says Ready from before: when this `up` started the kubelet,
  # only a status that it reported since then counts.
  [[ $STARTED_NOW == *" kubelet "* ]] || started=0
  wait_for "node $NODE_NAME Ready (see $STATE/logs/kubelet.log)" "$UP_TIMEOUT" node_ready_since "$started"
  wait_for "default StorageClass $K8S_STORAGE_CLASS" 60 kc get storageclass "$K8S_STORAGE_CLASS"
  wait_for "cluster DNS" 60 curl -fsS "http://127.0.0.1:$COREDNS_READY_PORT/ready"
  local c
  for c in "${COMPONENTS[@]}"; do running "$c" || die "$c exited; see $STATE/logs/$c.log"; done
  log "cluster is up: KUBECONFIG=$KUBECONFIG_PATH registry=$K8S_REGISTRY storageClass=$K8S_STORAGE_CLASS"
}

# Pod containers keep running under containerd's shims after containerd stops: kill them so
# that `stop` leaves nothing of the cluster running.
kill_pod_tasks() {
  [[ -S $CONTAINERD_SOCK ]] && running containerd || return 0
  local ids id
  ids=$(ctr_k8s tasks ls -q 2>/dev/null || true)
  [[ -n $ids ]] || return 0
  log "stopping $(wc -w <<<"$ids") pod containers"
  # Deleting the task is what makes its shim exit; one job per task keeps this quick.
  for id in $ids; do
    (ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
     for _ in 1 2 3 4 5 6 7 8 9 10; do ctr_k8s tasks delete "$id" >/dev/null 2>&1 && break; sleep 0.5; done) &
  done
  wait
}

cmd_stop() {
  ensure_root
  [[ -d $STATE ]] || { log "no cluster state in $STATE: nothing to stop"; return 0; }
  load_bins
  exec 9>"$STATE/.lock"; flock -w 600 9 || die "another cluster.sh holds $STATE/.lock"
  # Control plane and node agents first (the kubelet must not restart the pods we stop), then
  # the pods, then the runtime and storage.
  stop_group coredns provisioner kube-proxy kubelet kube-scheduler kube-controller-manager
  stop_group kube-apiserver api-bridge
  kill_pod_tasks
  stop_group containerd etcd registry
  log "cluster stopped; data kept in $STATE"
}

# kube-proxy --cleanup leaves the kubelet's own chains (KUBE-FIREWALL, canaries) behind.
remove_kube_chains() {
  local ipt t rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [A-Z-]+ .*-j KUBE-' | grep -v '^-A KUBE-' |
        while read -r rule; do eval "$ipt -t $t -D ${rule#-A }" 2>/dev/null || true; done || true
      "$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' | while read -r chain; do
        "$ipt" -t "$t" -F "$chain" 2>/dev/null || true
      done || true
      "$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p' | while read -r chain; do
        "$ipt" -t "$t" -X "$chain" 2>/dev/null || true
      done || true
    done
  done
  # kube-proxy turned this on for loopback NodePorts; with its guard chain gone, turn it off.
  sysctl -qw net.ipv4.conf.all.route_localnet=0
}

cmd_delete() {
  ensure_root
  if [[ ! -d $STATE ]] && ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "no cluster to delete"; return 0
  fi
  if [[ -d $STATE ]]; then cmd_stop; fi
  load_bins
  # Network namespaces of pods: the ones holding an address of our pod range.
  local ns m
  for ns in /var/run/netns/cni-*; do
    [[ -e $ns ]] || continue
    if ip netns exec "$(basename "$ns")" ip -4 -o addr 2>/dev/null | grep -q " ${NODE_IP%.*}\."; then
      umount "$ns" 2>/dev/null || true; rm -f "$ns"
    fi
  done
  # Mounts left by kubelet volumes and container root filesystems, deepest first.
  awk -v s="$STATE/" 'index($2, s) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  [[ ! -x $KUBE_BIN/kube-proxy ]] || "$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  remove_kube_chains
  ! ip link show "$BRIDGE" >/dev/null 2>&1 || ip link del "$BRIDGE"
  if awk -v s="$STATE/" 'index($2, s) == 1 {f=1} END {exit !f}' /proc/self/mounts; then
    die "mounts under $STATE remain; not removing it"
  fi
  rm -rf "$STATE"
  log "cluster deleted (binaries stay cached in $CACHE/k8s)"
}

cmd_status() {
  local c rc=0
  [[ -d $STATE ]] || { echo "cluster: absent ($STATE)"; return 1; }
  load_bins
  for c in "${COMPONENTS[@]}"; do
    if running "$c"; then printf '%-24s running (pid %s)\n' "$c" "$(<"$(pidfile "$c")")"
    else printf '%-24s stopped\n' "$c"; rc=1; fi
  done
  if running kube-apiserver; then
    printf '%-24s %s\n' node "$(kc get node "$NODE_NAME" --no-headers 2>/dev/null | awk '{print $2}' || echo unknown)"
  fi
  echo "kubeconfig               $KUBECONFIG_PATH"
  echo "registry                 $K8S_REGISTRY"
  echo "storage class            $K8S_STORAGE_CLASS"
  return "$rc"
}

# Sourcing (for tests) defines the functions without running a verb.
[[ ${BASH_SOURCE[0]} == "$0" ]] || return 0

case "${1:-}" in
  up) cmd_up ;;
  stop) cmd_stop ;;
  delete) cmd_delete ;;
  status) cmd_status ;;
  kubeconfig-path) echo "$KUBECONFIG_PATH" ;;
  -h|--help|help) usage ;;
  *) log "unknown or missing command '${1:-}' (allowed: up, stop, delete, status, kubeconfig-path)"; usage ;;
esac
