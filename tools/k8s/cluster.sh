#!/usr/bin/env bash
# A real single-node Kubernetes on this machine, with minikube's verbs:
#
#   tools/k8s/cluster.sh up               build what is missing, start what is not running, wait for
#                                         the node to be Ready and the default StorageClass to exist
#   tools/k8s/cluster.sh stop             stop every process and pod container, keep all data
#   tools/k8s/cluster.sh delete           stop, remove all cluster state and undo what up changed
#                                         on the host (sysctls, its iptables chains, users, ACLs)
#   tools/k8s/cluster.sh status           one line per component; exit 0 only if all run
#   tools/k8s/cluster.sh kubeconfig-path  print the admin kubeconfig's path
#
# Components: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and kube-proxy
# built from the Go module proxy (tools/k8s/build.sh); Debian's containerd (a separate instance
# from Docker's), runc and CNI plugins; Debian's docker-registry on ${K8S_REGISTRY}; a
# local-volume provisioner behind the default StorageClass; CoreDNS (cluster.local, no forwarding)
# on the node address; socat relaying the node address's API port to the loopback API server, so
# pods reach the API through the kubernetes Service; kube-router's network policy controller,
# which enforces NetworkPolicy with iptables and ipset. Add-ons, each a host process: Traefik (Ingress
# and Gateway API, entryPoint web on 127.0.0.1:8000, Gateway traefik/local), metrics-server (the
# metrics.k8s.io API behind the aggregation layer: kubectl top, the HPA), Prometheus (127.0.0.1:9090,
# scrapes annotated pods) and KWOK's controller (simulated nodes, tools/k8s/manifests/kwok-node.yaml).
#
# Locked down like a real cluster: every listener is on loopback except cluster DNS and the API
# relay on the node address, which only the pod range may reach (GOAPP-NODE-INPUT); etcd speaks
# TLS with client certificates only; the API server refuses anonymous requests but for its health
# endpoints and encrypts Secrets at rest; the control plane, DNS, registry and relay run as their
# own unprivileged users. Pods only get routes to the bridge (${POD_CIDR}) and the service range.
#
# State, logs and pid files: ${GOAPP_CACHE:-$HOME/.cache/goapp}/cluster (logs/ holds one log per
# process). Binaries: ${GOAPP_CACHE:-$HOME/.cache/goapp}/k8s. Every verb but status takes the lock
# ${GOAPP_CACHE}/cluster.lock before doing anything, waiting up to CLUSTER_LOCK_WAIT seconds (600).
set -euo pipefail
umask 022

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools="$repo/tools/k8s"
# shellcheck source=/dev/null
source "$repo/versions.env"

CACHE=${GOAPP_CACHE:-$HOME/.cache/goapp}
STATE="$CACHE/cluster"
KUBECONFIG_PATH="$STATE/kubeconfig"
LOCK_FILE="$CACHE/cluster.lock"
# What `up` changed on the host and `delete` undoes: sysctl values from before, ACL entries,
# accounts and directories it created.
HOST_RECORD="$STATE/host"
NODE_NAME=goapp-local
BRIDGE=goapp0
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
SERVICE_API_IP=10.96.0.1
NODE_PORT_RANGE=30000-32767
PROVISIONER_NAME=goapp.local/local-volume
CONTAINERD_SOCK="$STATE/containerd/containerd.sock"
ETCD_CLIENT=127.0.0.1:2379
ETCD_PEER=127.0.0.1:2380
KUBELET_PORT=10250
COREDNS_READY_PORT=18181
# The add-ons' listeners, all on loopback. Traefik's entryPoint web and the Gateway's listener share the port.
TRAEFIK_WEB_PORT=8000
METRICS_SERVER_PORT=4443
PROMETHEUS_ADDR=127.0.0.1:9090
KWOK_PORT=10247
# Simulated (KWOK) pods and nodes get addresses here, which the host routes as unreachable: nothing
# that dials them (kube-proxy's rules, Traefik, the API server) can send a packet off this machine.
SIMULATED_CIDR=10.245.0.0/16
SIMULATED_POD_CIDR=10.245.0.1/17
SIMULATED_NODE_IP=10.245.128.1
UP_TIMEOUT=${CLUSTER_UP_TIMEOUT:-300}
LOCK_WAIT=${CLUSTER_LOCK_WAIT:-600}
# Certificates are issued for a year (CAs for ten) and renewed by `up` this close to expiry.
RENEW_DAYS=30
# Start order; stop goes in reverse.
COMPONENTS=(registry etcd containerd kube-apiserver api-bridge kube-controller-manager kube-scheduler kubelet kube-proxy provisioner coredns kube-router
  kwok metrics-server prometheus traefik)
# These need no privilege and run as goapp-<component>, all in group CLUSTER_GROUP (which may enter
# the state directory). The rest need root: containerd and the kubelet (mounts, namespaces,
# cgroups), kube-proxy and kube-router (iptables, ipset), the provisioner (it deletes volume
# directories holding files of any pod's uid).
UNPRIVILEGED=(registry etcd kube-apiserver api-bridge kube-controller-manager kube-scheduler coredns
  kwok metrics-server prometheus traefik)
CLUSTER_GROUP=goapp-cluster
# Kernel settings the cluster's processes change (this script, the kubelet, kube-proxy): their
# values from before the first `up` are recorded and put back by `delete`.
HOST_SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys
  kernel.keys.root_maxbytes net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait)
# Host directories the kubelet, containerd and the CNI plugins create when missing, whatever their
# configured roots (the kubelet's device-plugin socket, its /var/log/containers links, the CNI
# result cache, pod network namespaces, shim sockets); `delete` removes the ones that did not exist
# before, once they hold nothing but the cluster's leftovers.
HOST_DIRS=(/var/log/containers /var/log/pods /var/lib/kubelet /var/lib/cni /run/netns /run/containerd)
# The CNI network's name (tools/k8s/config/cni-bridge.conflist): libcni names its cache files after it.
CNI_NETWORK=goapp-pods
CNI_CACHE=/var/lib/cni/results
DEVICE_PLUGIN_SOCKET=/var/lib/kubelet/device-plugins/kubelet.sock
SYSCTL_ROOT=/proc/sys
POLICY_RC_D=/usr/sbin/policy-rc.d
POLICY_RC_D_MARK="# written by goapp's tools/k8s/cluster.sh while it installs packages"
# The mark of the same script when it was scripts/cluster.sh: a copy left by a killed run of that version is ours too.
POLICY_RC_D_OLD_MARK="# written by goapp's scripts/cluster.sh while it installs packages"
DEB_PACKAGES=(containerd runc containernetworking-plugins iptables ipset conntrack docker-registry socat openssl
  gettext-base curl iproute2 util-linux passwd acl)

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
ipt() { iptables -w 10 "$@"; }

in_list() { # word words... -> exit 0 if word is among words
  local w=$1; shift
  [[ " $* " == *" $w "* ]]
}

whole_seconds() { # name value
  [[ $2 =~ ^[0-9]+$ ]] || die "$1 must be a whole number of seconds, got '$2'"
}

# ---------------------------------------------------------------- the lock

# One lock for every verb that changes the cluster, taken before any work (packages, builds,
# ports), so two `up` runs never race: the second waits, then finds everything running.
LOCK_HELD=""
lock_holder() { local who; who=$(cat "$LOCK_FILE" 2>/dev/null || true); echo "${who:-unknown}"; }
take_lock() { # verb
  [[ -z $LOCK_HELD ]] || return 0
  whole_seconds CLUSTER_LOCK_WAIT "$LOCK_WAIT"
  mkdir -p "$CACHE"
  exec 9<>"$LOCK_FILE"
  if ! flock -n 9; then
    log "another tools/k8s/cluster.sh holds $LOCK_FILE ($(lock_holder)); waiting up to ${LOCK_WAIT}s"
    flock -w "$LOCK_WAIT" 9 ||
      die "another tools/k8s/cluster.sh still holds $LOCK_FILE ($(lock_holder)) after ${LOCK_WAIT}s; gave up, nothing was changed"
  fi
  printf 'pid %s: %s\n' "$$" "$1" >"$LOCK_FILE"
  LOCK_HELD=1
}

# ---------------------------------------------------------------- prerequisites

ensure_root() { [[ $(id -u) == 0 ]] || die "needs root (kubelet, containerd and iptables manage the host)"; }

apt_install() { # packages...
  local -a opts=(-o DPkg::Lock::Timeout=600 -y --no-install-recommends)
  DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install "$@" ||
    { apt-get -o DPkg::Lock::Timeout=600 update && DEBIAN_FRONTEND=noninteractive apt-get "${opts[@]}" install "$@"; }
}

ensure_packages() {
  local missing=() p rc=0
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  log "installing Debian packages: ${missing[*]}"
  # policy-rc.d keeps the packages' own services (system containerd, docker-registry on :5000 on
  # every interface) from starting: this script runs its own instances. It is removed whatever
  # apt-get does; a copy left by a killed run carries the mark, so `delete` removes it too.
  local created=""
  if [[ ! -e $POLICY_RC_D ]]; then
    printf '#!/bin/sh\n%s\nexit 101\n' "$POLICY_RC_D_MARK" >"$POLICY_RC_D"; chmod +x "$POLICY_RC_D"; created=1
  fi
  apt_install "${missing[@]}" || rc=$?
  [[ -z $created ]] || rm -f "$POLICY_RC_D"
  ((rc == 0)) || die "apt-get could not install: ${missing[*]}"
}

remove_own_policy_rc_d() {
  [[ -f $POLICY_RC_D ]] && grep -qxF -e "$POLICY_RC_D_MARK" -e "$POLICY_RC_D_OLD_MARK" "$POLICY_RC_D" || return 0
  log "removing $POLICY_RC_D left by an interrupted package install"
  rm -f "$POLICY_RC_D"
}

# ---------------------------------------------------------------- what `up` changes on the host

record_line() { # file line: appended once
  mkdir -p "$HOST_RECORD"; chmod 700 "$HOST_RECORD"
  grep -qxF -- "$2" "$HOST_RECORD/$1" 2>/dev/null || echo "$2" >>"$HOST_RECORD/$1"
}

sysctl_path() { echo "$SYSCTL_ROOT/${1//.//}"; }

# The value from before the cluster first touched a setting; later runs keep the first record.
record_sysctls() {
  local key path
  for key in "${HOST_SYSCTLS[@]}"; do
    path=$(sysctl_path "$key")
    [[ -r $path ]] || continue
    grep -q "^$key=" "$HOST_RECORD/sysctl" 2>/dev/null || record_line sysctl "$key=$(<"$path")"
  done
}

set_sysctl() { # key value
  local path; path=$(sysctl_path "$1")
  [[ $(<"$path") == "$2" ]] || echo "$2" >"$path"
}

restore_sysctls() {
  local key value
  [[ -f $HOST_RECORD/sysctl ]] || return 0
  while IFS='=' read -r key value; do
    [[ -w $(sysctl_path "$key") ]] || continue
    set_sysctl "$key" "$value" 2>/dev/null || log "could not restore $key=$value"
  done <"$HOST_RECORD/sysctl"
}

record_host_dirs() {
  local d
  for d in "${HOST_DIRS[@]}"; do
    [[ -e $d ]] || record_line created-dirs "$d"
  done
}

# Directories the cluster's processes created: removed when nothing but its own leftovers remain
# (empty directories, symlinks into the state directory), so another program's files survive.
# What the cluster's node agents leave in host paths they do not let us configure: the kubelet's
# device-plugin socket (once no kubelet runs) and libcni's cached results of the cluster's network
# and of those sandboxes' loopback (written when a pod stops without a CNI DEL, as `stop` does).
remove_node_leftovers() {
  local f id
  pgrep -x kubelet >/dev/null || rm -f "$DEVICE_PLUGIN_SOCKET"
  for f in "$CNI_CACHE/$CNI_NETWORK"-*; do
    [[ -e $f ]] || continue
    id=${f#"$CNI_CACHE/$CNI_NETWORK"-}; id=${id%-*}
    rm -f "$f" "$CNI_CACHE/cni-loopback-$id-lo"
  done
}

remove_created_dirs() {
  local d
  [[ -f $HOST_RECORD/created-dirs ]] || return 0
  while read -r d; do
    [[ -d $d ]] || continue
    find "$d" -xdev -type l -lname "$STATE/*" -delete 2>/dev/null || true
    find "$d" -xdev -depth -type d -empty -delete 2>/dev/null || true
    [[ ! -e $d ]] || log "kept $d: it holds files of other programs"
  done <"$HOST_RECORD/created-dirs"
}

ensure_accounts() {
  local c user
  if ! getent group "$CLUSTER_GROUP" >/dev/null; then
    groupadd --system "$CLUSTER_GROUP"; record_line accounts "group $CLUSTER_GROUP"
  fi
  for c in "${UNPRIVILEGED[@]}"; do
    user=$(user_of "$c")
    getent passwd "$user" >/dev/null && continue
    useradd --system --gid "$CLUSTER_GROUP" --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --comment "goapp local cluster, $c" "$user"
    record_line accounts "user $user"
  done
}

remove_accounts() {
  local kind name
  [[ -f $HOST_RECORD/accounts ]] || return 0
  # Users before their group.
  while read -r kind name; do
    if [[ $kind == user ]] && getent passwd "$name" >/dev/null; then userdel "$name" || log "could not remove user $name"; fi
  done <"$HOST_RECORD/accounts"
  while read -r kind name; do
    if [[ $kind == group ]] && getent group "$name" >/dev/null; then groupdel "$name" || log "could not remove group $name"; fi
  done <"$HOST_RECORD/accounts"
}

# The unprivileged components must reach the state directory: an ancestor that others may not
# enter (root's home is 0700) gets one ACL entry letting the cluster's group pass through it.
grant_traverse() {
  local d=$STATE
  while d=$(dirname "$d"); [[ $d != / ]]; do
    [[ $(stat -c %A "$d") == *[xt] ]] && continue
    getfacl -cp "$d" 2>/dev/null | grep -q "^group:$CLUSTER_GROUP:" && continue
    local minimal=""
    getfacl -cp "$d" | grep -Eq '^(user|group):[^:]+:|^mask::' || minimal=" minimal"
    setfacl -m "g:$CLUSTER_GROUP:x" "$d"
    record_line acl "$d$minimal"
  done
}

revoke_traverse() {
  local d flag
  [[ -f $HOST_RECORD/acl ]] || return 0
  while read -r d flag; do
    [[ -d $d ]] || continue
    setfacl -x "g:$CLUSTER_GROUP" "$d" 2>/dev/null || true
    # An ACL that was plain before goes back to plain (setfacl -x leaves an empty mask behind),
    # unless someone added entries of their own meanwhile.
    if [[ $flag == minimal ]] && ! getfacl -cp "$d" | grep -Eq '^(user|group):[^:]+:'; then setfacl -b "$d"; fi
  done <"$HOST_RECORD/acl"
}

# ---------------------------------------------------------------- processes

pidfile() { echo "$STATE/run/$1.pid"; }
user_of() { in_list "$1" "${UNPRIVILEGED[@]}" && echo "goapp-$1" || true; }
home_of() { echo "$STATE/home/$1"; }

running() { # component -> exit 0 if its recorded process is alive and is still that binary
  local f pid
  f=$(pidfile "$1"); [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ -n $pid && -d /proc/$pid ]] || return 1
  grep -qa -- "$(basename "$(cmd_of "$1" | head -n1)")" "/proc/$pid/cmdline" 2>/dev/null
}

cmd_of() { # component -> its command line, one argument per line
  local h; h=$(home_of "$1")
  case "$1" in
    registry) printf '%s\n' /usr/bin/docker-registry serve "$STATE/config/registry.yml" ;;
    etcd) printf '%s\n' "$ETCD_BIN/etcd" --name "$NODE_NAME" --data-dir "$STATE/etcd" \
      --listen-client-urls "https://$ETCD_CLIENT" --advertise-client-urls "https://$ETCD_CLIENT" \
      --listen-peer-urls "https://$ETCD_PEER" --initial-advertise-peer-urls "https://$ETCD_PEER" \
      --initial-cluster "$NODE_NAME=https://$ETCD_PEER" \
      --client-cert-auth --trusted-ca-file "$h/etcd-ca.crt" --cert-file "$h/etcd-server.crt" --key-file "$h/etcd-server.key" \
      --peer-client-cert-auth --peer-trusted-ca-file "$h/etcd-ca.crt" \
      --peer-cert-file "$h/etcd-server.crt" --peer-key-file "$h/etcd-server.key" \
      --listen-metrics-urls "" --log-level warn ;;
    containerd) printf '%s\n' /usr/bin/containerd --config "$STATE/config/containerd.toml" ;;
    kube-apiserver) printf '%s\n' "$KUBE_BIN/kube-apiserver" \
      --bind-address 127.0.0.1 --secure-port "$K8S_API_PORT" --advertise-address "$NODE_IP" \
      --etcd-servers "https://$ETCD_CLIENT" --etcd-cafile "$h/etcd-ca.crt" \
      --etcd-certfile "$h/apiserver-etcd-client.crt" --etcd-keyfile "$h/apiserver-etcd-client.key" \
      --encryption-provider-config "$h/encryption-config.yaml" \
      --authentication-config "$STATE/config/authentication.yaml" \
      --service-cluster-ip-range "$SERVICE_CIDR" --service-node-port-range "$NODE_PORT_RANGE" \
      --client-ca-file "$h/ca.crt" \
      --tls-cert-file "$h/apiserver.crt" --tls-private-key-file "$h/apiserver.key" \
      --kubelet-client-certificate "$h/apiserver-kubelet-client.crt" \
      --kubelet-client-key "$h/apiserver-kubelet-client.key" \
      --kubelet-certificate-authority "$h/ca.crt" \
      --kubelet-preferred-address-types InternalIP \
      --service-account-issuer https://kubernetes.default.svc.cluster.local \
      --service-account-key-file "$h/sa.pub" --service-account-signing-key-file "$h/sa.key" \
      --requestheader-client-ca-file "$h/front-proxy-ca.crt" \
      --requestheader-allowed-names front-proxy-client \
      --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
      --requestheader-extra-headers-prefix X-Remote-Extra- \
      --proxy-client-cert-file "$h/front-proxy-client.crt" \
      --proxy-client-key-file "$h/front-proxy-client.key" \
      --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
      --enable-aggregator-routing=true \
      --allow-privileged=true --profiling=false ;;
    # The API server listens on loopback only; the kubernetes Service's endpoint is the node
    # address, so this relay is what lets pods (in-cluster clients) reach it.
    api-bridge) printf '%s\n' /usr/bin/socat "TCP-LISTEN:$K8S_API_PORT,bind=$NODE_IP,reuseaddr,fork" \
      "TCP:127.0.0.1:$K8S_API_PORT" ;;
    kube-controller-manager) printf '%s\n' "$KUBE_BIN/kube-controller-manager" \
      --kubeconfig "$h/controller-manager.kubeconfig" \
      --authentication-kubeconfig "$h/controller-manager.kubeconfig" \
      --authorization-kubeconfig "$h/controller-manager.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
      --root-ca-file "$h/ca.crt" --service-account-private-key-file "$h/sa.key" \
      --cluster-signing-cert-file "$h/ca.crt" --cluster-signing-key-file "$h/ca.key" \
      --service-cluster-ip-range "$SERVICE_CIDR" --allocate-node-cidrs=false --profiling=false ;;
    kube-scheduler) printf '%s\n' "$KUBE_BIN/kube-scheduler" \
      --kubeconfig "$h/scheduler.kubeconfig" \
      --authentication-kubeconfig "$h/scheduler.kubeconfig" \
      --authorization-kubeconfig "$h/scheduler.kubeconfig" \
      --bind-address 127.0.0.1 --leader-elect=false --profiling=false ;;
    kubelet) printf '%s\n' "$KUBE_BIN/kubelet" --config "$STATE/config/kubelet.yaml" \
      --kubeconfig "$STATE/kubelet.kubeconfig" --root-dir "$STATE/kubelet" \
      --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" ;;
    kube-proxy) printf '%s\n' "$KUBE_BIN/kube-proxy" --config "$STATE/config/kube-proxy.yaml" ;;
    provisioner) printf '%s\n' "$PROVISIONER_BIN/local-volume-provisioner" \
      -kubeconfig "$STATE/provisioner.kubeconfig" -provisioner "$PROVISIONER_NAME" \
      -node "$NODE_NAME" -base-dir "$STATE/volumes" ;;
    coredns) printf '%s\n' "$COREDNS_BIN/coredns" -conf "$STATE/config/Corefile" ;;
    # Only the network policy controller: routes come from the bridge, services from kube-proxy.
    # Health and metrics ports off (kube-router binds them on every address).
    kube-router) printf '%s\n' "$NETPOL_BIN/kube-router" --kubeconfig "$STATE/kube-router.kubeconfig" \
      --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
      --hostname-override "$NODE_NAME" --service-cluster-ip-range "$SERVICE_CIDR" \
      --service-node-port-range "$NODE_PORT_RANGE" --enable-ipv4=true --enable-ipv6=false \
      --health-port=0 --metrics-port=0 ;;
    # Its kubeconfig comes from KUBECONFIG (env_of): Traefik takes no client certificate otherwise.
    # Status addresses are loopback, where the entryPoint listens (Ingress and Gateway status).
    traefik) printf '%s\n' "$TRAEFIK_BIN/traefik" --global.checknewversion=false --global.sendanonymoususage=false \
      --entrypoints.web.address="127.0.0.1:$TRAEFIK_WEB_PORT" \
      --providers.kubernetesgateway=true --providers.kubernetesgateway.statusaddress.ip=127.0.0.1 \
      --providers.kubernetesingress=true --providers.kubernetesingress.ingressendpoint.ip=127.0.0.1 \
      --log.level=INFO ;;
    # The kubelet's serving certificate is verified against the cluster CA (it names the node address,
    # which this host's connections reach on loopback). Simulated nodes (label type=kwok) are skipped.
    metrics-server) printf '%s\n' "$METRICS_SERVER_BIN/metrics-server" --kubeconfig "$h/metrics-server.kubeconfig" \
      --authentication-kubeconfig "$h/metrics-server.kubeconfig" --authorization-kubeconfig "$h/metrics-server.kubeconfig" \
      --bind-address 127.0.0.1 --secure-port "$METRICS_SERVER_PORT" \
      --tls-cert-file "$h/metrics-server-serving.crt" --tls-private-key-file "$h/metrics-server-serving.key" \
      --kubelet-certificate-authority "$h/ca.crt" --kubelet-preferred-address-types InternalIP \
      --kubelet-use-node-status-port --node-selector 'type!=kwok' --metric-resolution 15s --profiling=false ;;
    # Series of pods deleted just before a `stop` get no staleness marker; a 1 minute lookback (12 scrapes)
    # instead of 5 keeps them from answering instant queries long after the next `up`.
    prometheus) printf '%s\n' "$PROMETHEUS_BIN/prometheus" --config.file "$STATE/config/prometheus.yml" \
      --storage.tsdb.path "$STATE/prometheus" --storage.tsdb.retention.time 7d --query.lookback-delta 1m \
      --web.listen-address "$PROMETHEUS_ADDR" ;;
    kwok) printf '%s\n' "$KWOK_BIN/kwok" --kubeconfig "$h/kwok.kubeconfig" --config "$STATE/config/kwok-config.yaml" ;;
    *) die "unknown component '$1'" ;;
  esac
}

# Credentials each component reads, relative to the state directory. An unprivileged component
# gets its own copies (mode 0600, its user) in its home; root components read them in place.
creds_of() {
  case "$1" in
    etcd) echo pki/etcd-ca.crt pki/etcd-server.crt pki/etcd-server.key ;;
    kube-apiserver) echo pki/ca.crt pki/apiserver.crt pki/apiserver.key pki/apiserver-kubelet-client.crt \
      pki/apiserver-kubelet-client.key pki/sa.pub pki/sa.key pki/front-proxy-ca.crt pki/front-proxy-client.crt \
      pki/front-proxy-client.key pki/etcd-ca.crt pki/apiserver-etcd-client.crt pki/apiserver-etcd-client.key \
      pki/encryption-config.yaml ;;
    kube-controller-manager) echo controller-manager.kubeconfig pki/ca.crt pki/ca.key pki/sa.key ;;
    kube-scheduler) echo scheduler.kubeconfig ;;
    coredns) echo coredns.kubeconfig ;;
    kubelet) echo kubelet.kubeconfig pki/kubelet.crt pki/kubelet.key pki/ca.crt ;;
    kube-proxy) echo kube-proxy.kubeconfig ;;
    provisioner) echo provisioner.kubeconfig ;;
    kube-router) echo kube-router.kubeconfig ;;
    traefik) echo traefik.kubeconfig ;;
    metrics-server) echo metrics-server.kubeconfig pki/ca.crt pki/metrics-server-serving.crt pki/metrics-server-serving.key ;;
    prometheus) echo prometheus.kubeconfig ;;
    kwok) echo kwok.kubeconfig ;;
  esac
}

env_of() { # component -> NAME=value lines it is started with
  case "$1" in
    traefik) echo "KUBECONFIG=$(home_of traefik)/traefik.kubeconfig" ;;
  esac
}

# How a component is launched: as its own user, with no capability (CoreDNS keeps the one that
# binds port 53), no way to gain privileges, no supplementary groups.
launcher_of() {
  local user; user=$(user_of "$1")
  [[ -n $user ]] || return 0
  local caps=-all
  [[ $1 != coredns ]] || caps=-all,+net_bind_service
  printf '%s\n' setpriv --reuid "$(id -u "$user")" --regid "$(getent group "$CLUSTER_GROUP" | cut -d: -f3)" \
    --clear-groups --no-new-privs --inh-caps "$caps" --bounding-set "$caps"
  [[ $1 != coredns ]] || printf '%s\n' --ambient-caps "$caps"
}

# What a component runs with: its command line, its user, the config files and credentials it
# reads. A running component whose fingerprint changed (new binary version, edited config,
# renewed certificate) is restarted by `up`.
fingerprint() { # component
  local a f
  {
    env_of "$1"
    launcher_of "$1"
    cmd_of "$1"
    cmd_of "$1" | while read -r a; do [[ $a != "$STATE/"* || ! -f $a ]] || cat "$a"; done
    for f in $(creds_of "$1"); do cat "$STATE/$f"; done
    [[ $1 != containerd ]] || cat "$STATE"/containerd/certs.d/*/hosts.toml
  } | sha256sum | cut -d' ' -f1
}

# The ports the components listen on. `up` checks them before it starts anything, so that a port held
# by another program (say a second cluster from another GOAPP_CACHE, or a registry on :5000) is named at once
# instead of surfacing minutes later as a component that never becomes ready.
ports_of() { # component -> "tcp|udp host:port" it binds, one per line
  case "$1" in
    registry) echo "tcp $K8S_REGISTRY" ;;
    etcd) printf 'tcp %s\n' "$ETCD_CLIENT" "$ETCD_PEER" ;;
    kube-apiserver) echo "tcp 127.0.0.1:$K8S_API_PORT" ;;
    api-bridge) echo "tcp $NODE_IP:$K8S_API_PORT" ;;
    kube-controller-manager) echo "tcp 127.0.0.1:10257" ;;
    kube-scheduler) echo "tcp 127.0.0.1:10259" ;;
    kubelet) printf 'tcp %s\n' "127.0.0.1:$KUBELET_PORT" 127.0.0.1:10248 ;;
    kube-proxy) printf 'tcp %s\n' 127.0.0.1:10256 127.0.0.1:10249 ;;
    coredns) printf '%s\n' "tcp 127.0.0.1:$COREDNS_READY_PORT" "tcp $NODE_IP:53" "udp $NODE_IP:53" ;;
    traefik) echo "tcp 127.0.0.1:$TRAEFIK_WEB_PORT" ;;
    metrics-server) echo "tcp 127.0.0.1:$METRICS_SERVER_PORT" ;;
    prometheus) echo "tcp $PROMETHEUS_ADDR" ;;
    kwok) echo "tcp 127.0.0.1:$KWOK_PORT" ;;
  esac
}

check_ports_free() {
  local c proto addr port listeners holder
  local -a busy=()
  for c in "${COMPONENTS[@]}"; do
    running "$c" && continue
    while read -r proto addr; do
      [[ -n $addr ]] || continue
      port=${addr##*:}
      # The address itself or a wildcard listener on the same port.
      listeners=$(ss -Hl"${proto:0:1}"np "sport = :$port and ( src ${addr%:*} or src 0.0.0.0 or src [::] )")
      [[ -n $listeners ]] || continue
      holder=$(grep -o 'users:(([^)]*))' <<<"$listeners" | head -n 1)
      [[ $proto == tcp ]] || addr+="/$proto"
      busy+=("$addr for $c (held by ${holder:-an unknown process})")
    done < <(ports_of "$c")
  done
  ((${#busy[@]} == 0)) || die "port(s) already in use: ${busy[*]}. Stop that program (another goapp cluster: \
GOAPP_CACHE=<its cache> tools/k8s/cluster.sh stop) and run up again; nothing was started"
}

close_inherited_fds() { # in a subshell about to exec a daemon
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    ((fd <= 2)) || eval "exec $fd>&-" 2>/dev/null || true
  done
}

STARTED_NOW=""
start() { # component
  local fp; fp=$(fingerprint "$1")
  if running "$1"; then
    [[ $(cat "$STATE/run/$1.fingerprint" 2>/dev/null) != "$fp" ]] || return 0
    log "$1 runs with an outdated binary, config or certificate: restarting it"
    stop_group "$1"
  fi
  STARTED_NOW+=" $1 "
  echo "$fp" >"$STATE/run/$1.fingerprint"
  local -a cmd launcher environment
  mapfile -t cmd < <(cmd_of "$1")
  mapfile -t launcher < <(launcher_of "$1")
  mapfile -t environment < <(env_of "$1")
  log "starting $1${launcher:+ as $(user_of "$1")}"
  # setsid: the process outlives this script and its terminal; its log is appended across runs.
  # Only stdin, stdout and stderr are handed down: a daemon inheriting another descriptor would hold
  # it as long as it runs (this script's lock on fd 9, or a caller's `flock FILE tools/k8s/cluster.sh up`).
  (close_inherited_fds; exec setsid nohup env "${environment[@]}" "${launcher[@]}" "${cmd[@]}") >>"$STATE/logs/$1.log" 2>&1 </dev/null &
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

# iptables chain of this script, rewritten whole on every `up` (the GOAPP- prefix marks it as ours).
own_chain() { # table chain rules...
  local table=$1 chain=$2 rule; shift 2
  ipt -t "$table" -N "$chain" 2>/dev/null || ipt -t "$table" -F "$chain"
  for rule in "$@"; do
    # shellcheck disable=SC2086 # a rule is a list of iptables words
    ipt -t "$table" -A "$chain" $rule
  done
}

jump_first() { # table builtin-chain rule
  # shellcheck disable=SC2086
  ipt -t "$1" -C "$2" $3 2>/dev/null || ipt -t "$1" -I "$2" 1 $3
}

setup_host_network() {
  # Service traffic between pods on the bridge must pass iptables (kube-proxy's DNAT).
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] || modprobe br_netfilter 2>/dev/null || true
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ||
    die "the kernel has no bridge netfilter (br_netfilter): pods could not reach services"
  record_sysctls
  record_host_dirs
  set_sysctl net.bridge.bridge-nf-call-iptables 1
  set_sysctl net.ipv4.ip_forward 1
  # The bridge exists before the kubelet starts, since the node address lives on it.
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  # The node address is a local address, which Linux answers on every interface: only the pod
  # range (on the bridge) and this host itself may reach what listens there (cluster DNS, the
  # API relay).
  own_chain filter GOAPP-NODE-INPUT "-i $BRIDGE -s $POD_CIDR -j RETURN" "-i lo -j RETURN" "-j DROP"
  jump_first filter INPUT "-d $NODE_IP/32 -j GOAPP-NODE-INPUT"
  # The kubelet listens on loopback, yet the API server dials the node address (a node's
  # address cannot be loopback): this host's own connections to it are sent to loopback. Pods'
  # connections do not pass OUTPUT, so they find nothing there.
  # metrics-server likewise: the API server's aggregation layer dials the endpoint of its Service.
  own_chain nat GOAPP-NODE-OUTPUT "-p tcp --dport $KUBELET_PORT -j DNAT --to-destination 127.0.0.1:$KUBELET_PORT" \
    "-p tcp --dport $METRICS_SERVER_PORT -j DNAT --to-destination 127.0.0.1:$METRICS_SERVER_PORT"
  jump_first nat OUTPUT "-d $NODE_IP/32 -j GOAPP-NODE-OUTPUT"
  # Simulated pods and nodes lead nowhere (see SIMULATED_CIDR).
  if ! ip route show type unreachable | grep -q "^unreachable $SIMULATED_CIDR "; then
    ip route add unreachable "$SIMULATED_CIDR"; record_line routes "unreachable $SIMULATED_CIDR"
  fi
}

remove_routes() {
  local route
  [[ -f $HOST_RECORD/routes ]] || return 0
  while read -r route; do
    # shellcheck disable=SC2086 # a route is a list of ip-route words
    ip route del $route 2>/dev/null || true
  done <"$HOST_RECORD/routes"
}

# ---------------------------------------------------------------- certificates and kubeconfigs

# A certificate is current when it verifies against its CA (a renewed CA re-issues everything)
# and does not expire within RENEW_DAYS.
cert_current() { # crt ca-crt
  [[ -f $1 ]] && openssl x509 -in "$1" -noout -checkend $((RENEW_DAYS * 86400)) >/dev/null 2>&1 &&
    openssl verify -CAfile "$2" "$1" >/dev/null 2>&1
}

expiry_note() { [[ ! -f $1 ]] || echo " (it expires $(openssl x509 -in "$1" -noout -enddate | cut -d= -f2))"; }

cert() { # name CN O SANs(comma list, may be empty) [server|client|peer] [CA name]
  local name=$1 cn=$2 org=$3 sans=$4 kind=${5:-client} ca=${6:-ca} d="$STATE/pki" ext
  cert_current "$d/$name.crt" "$d/$ca.crt" && return 0
  [[ ! -f $d/$name.crt ]] || log "renewing certificate $name$(expiry_note "$d/$name.crt")"
  ext="$d/$name.ext"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    case $kind in
      server) echo "extendedKeyUsage=serverAuth" ;;
      peer) echo "extendedKeyUsage=serverAuth,clientAuth" ;;
      *) echo "extendedKeyUsage=clientAuth" ;;
    esac
    [[ -z $sans ]] || echo "subjectAltName=$sans"
  } >"$ext"
  [[ -f $d/$name.key ]] || openssl genrsa -out "$d/$name.key" 2048 2>/dev/null
  openssl req -new -key "$d/$name.key" -subj "/CN=$cn${org:+/O=$org}" -out "$d/$name.csr"
  openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" -CAcreateserial \
    -days 365 -sha256 -extfile "$ext" -out "$d/$name.crt.tmp" 2>/dev/null
  mv "$d/$name.crt.tmp" "$d/$name.crt"
  rm -f "$d/$name.csr" "$ext"
}

# A kubeconfig is rewritten when the certificate or CA it embeds is not the current one.
kubeconfig() { # file user cert-name
  local f="$STATE/$1"
  if [[ -f $f ]] && grep -qF "$(base64 -w0 "$STATE/pki/$3.crt")" "$f" && grep -qF "$(base64 -w0 "$STATE/pki/ca.crt")" "$f"; then
    return 0
  fi
  rm -f "$f.tmp"
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
  if [[ -f $d/$1.crt ]]; then
    openssl x509 -in "$d/$1.crt" -noout -checkend $((RENEW_DAYS * 86400)) >/dev/null 2>&1 && return 0
    log "renewing CA $1$(expiry_note "$d/$1.crt"); every certificate it signed is re-issued"
    rm -f "$d/$1.key"
  fi
  openssl genrsa -out "$d/$1.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$d/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$d/$1.crt"
}

# Secrets at rest: secretbox (XSalsa20-Poly1305) with a random 32-byte key that never leaves the
# state directory; identity only reads Secrets written before encryption was turned on.
encryption_config() {
  local f="$STATE/pki/encryption-config.yaml"
  [[ -f $f ]] && return 0
  (
    umask 077
    cat >"$f.tmp" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: $(head -c 32 /dev/urandom | base64 -w0)
      - identity: {}
EOF
  )
  mv "$f.tmp" "$f"
}

setup_pki() {
  local d="$STATE/pki"
  mkdir -p "$d"; chmod 700 "$d"
  [[ -f $d/ca.crt ]] || log "creating the cluster CAs and certificates"
  new_ca ca goapp-local-ca
  # Front-proxy CA, as kubeadm sets up: the API server's request-header authentication, which
  # the controller-manager and scheduler look up at start (and API aggregation uses).
  new_ca front-proxy-ca goapp-local-front-proxy-ca
  # etcd trusts only certificates of its own CA: a client certificate of the cluster CA (any
  # Kubernetes user) cannot talk to etcd.
  new_ca etcd-ca goapp-local-etcd-ca
  cert etcd-server etcd "" "DNS:localhost,IP:127.0.0.1" peer etcd-ca
  cert apiserver-etcd-client kube-apiserver-etcd-client "" "" client etcd-ca
  # For this script's health check and for reading etcd directly (root only).
  cert etcd-healthcheck-client goapp-etcd-healthcheck "" "" client etcd-ca
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
  cert kube-router goapp:kube-router "" ""
  cert traefik goapp:traefik "" ""
  cert metrics-server goapp:metrics-server "" ""
  # What the aggregation layer verifies (the APIService's caBundle is the cluster CA).
  cert metrics-server-serving metrics-server.kube-system.svc "" \
    "DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local" server
  cert prometheus goapp:prometheus "" ""
  cert kwok goapp:kwok "" ""
  if [[ ! -f $d/sa.key ]]; then
    openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
    openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
  fi
  encryption_config
  kubeconfig kubeconfig goapp-admin admin
  kubeconfig controller-manager.kubeconfig system:kube-controller-manager controller-manager
  kubeconfig scheduler.kubeconfig system:kube-scheduler scheduler
  kubeconfig kubelet.kubeconfig "system:node:$NODE_NAME" kubelet-client
  kubeconfig kube-proxy.kubeconfig system:kube-proxy kube-proxy
  kubeconfig provisioner.kubeconfig goapp:local-volume-provisioner provisioner
  kubeconfig coredns.kubeconfig system:coredns coredns
  kubeconfig kube-router.kubeconfig goapp:kube-router kube-router
  kubeconfig traefik.kubeconfig goapp:traefik traefik
  kubeconfig metrics-server.kubeconfig goapp:metrics-server metrics-server
  kubeconfig prometheus.kubeconfig goapp:prometheus prometheus
  kubeconfig kwok.kubeconfig goapp:kwok kwok
}

# The state directory is root's; the cluster's group may enter it and read config/, each
# unprivileged component owns its home (copies of its credentials) and its data directory.
setup_ownership() {
  local c user home f copy
  chown "root:$CLUSTER_GROUP" "$STATE" "$STATE/home"; chmod 750 "$STATE" "$STATE/home"
  for c in "${UNPRIVILEGED[@]}"; do
    user=$(user_of "$c"); home=$(home_of "$c")
    mkdir -p "$home"; chown "$user:$CLUSTER_GROUP" "$home"; chmod 700 "$home"
    for f in $(creds_of "$c"); do
      copy="$home/${f##*/}"
      if ! cmp -s "$STATE/$f" "$copy"; then
        install -m 600 -o "$user" -g "$CLUSTER_GROUP" "$STATE/$f" "$copy.tmp"; mv "$copy.tmp" "$copy"
      fi
      chown "$user:$CLUSTER_GROUP" "$copy"; chmod 600 "$copy"
    done
  done
  own_tree "$STATE/etcd" "$(user_of etcd)"
  own_tree "$STATE/registry" "$(user_of registry)"
  own_tree "$STATE/prometheus" "$(user_of prometheus)"
}

own_tree() { # dir user: data written by an earlier run as root changes hands once
  [[ $(stat -c %U "$1") == "$2" ]] || chown -R "$2:$CLUSTER_GROUP" "$1"
  chmod 700 "$1"
}

# ---------------------------------------------------------------- configuration

render() { # template destination
  # Only our own variables are substituted, so a literal $ elsewhere survives.
  STATE=$STATE CONTAINERD_SOCK=$CONTAINERD_SOCK PAUSE_IMAGE=$PAUSE_IMAGE K8S_REGISTRY=$K8S_REGISTRY \
  BRIDGE=$BRIDGE POD_CIDR=$POD_CIDR NODE_IP=$NODE_IP SERVICE_CIDR=$SERVICE_CIDR NODE_NAME=$NODE_NAME \
  K8S_STORAGE_CLASS=$K8S_STORAGE_CLASS PROVISIONER_NAME=$PROVISIONER_NAME COREDNS_READY_PORT=$COREDNS_READY_PORT \
  KUBELET_PORT=$KUBELET_PORT TRAEFIK_WEB_PORT=$TRAEFIK_WEB_PORT METRICS_SERVER_PORT=$METRICS_SERVER_PORT \
  KWOK_PORT=$KWOK_PORT SIMULATED_CIDR=$SIMULATED_CIDR SIMULATED_POD_CIDR=$SIMULATED_POD_CIDR \
  SIMULATED_NODE_IP=$SIMULATED_NODE_IP POD_IP_REGEX=$(pod_ip_regex) CLUSTER_CA_BUNDLE=${CLUSTER_CA_BUNDLE:-} \
    envsubst "$(render_variables)" \
    <"$1" >"$2.tmp"
  mv "$2.tmp" "$2"
}

pod_ip_regex() { # the addresses of POD_CIDR (a /24) as a regular expression, for Prometheus' relabelling
  local net=${POD_CIDR%.*}
  echo "${net//./\\.}\\.[0-9]+"
}

render_variables() { # envsubst's SHELL-FORMAT: the list of ${NAME} it may replace, and no other
  local name
  for name in STATE CONTAINERD_SOCK PAUSE_IMAGE K8S_REGISTRY BRIDGE POD_CIDR NODE_IP SERVICE_CIDR NODE_NAME \
    K8S_STORAGE_CLASS PROVISIONER_NAME COREDNS_READY_PORT KUBELET_PORT TRAEFIK_WEB_PORT METRICS_SERVER_PORT \
    KWOK_PORT SIMULATED_CIDR SIMULATED_POD_CIDR SIMULATED_NODE_IP POD_IP_REGEX CLUSTER_CA_BUNDLE; do
    printf "\${%s} " "$name"
  done
}

write_configs() {
  mkdir -p "$STATE"/{config,logs,run,etcd,registry,prometheus,volumes,kubelet,pod-logs,home,cni/net.d,cni/ipam} \
    "$STATE/containerd/certs.d/$K8S_REGISTRY" "$STATE/containerd/certs.d/_default"
  # Only root's processes use these.
  chmod 700 "$STATE"/{logs,run,volumes,kubelet,pod-logs,cni,containerd}
  local c="$tools/config"
  render "$c/containerd.toml" "$STATE/config/containerd.toml"
  render "$c/registry-hosts.toml" "$STATE/containerd/certs.d/$K8S_REGISTRY/hosts.toml"
  render "$c/default-hosts.toml" "$STATE/containerd/certs.d/_default/hosts.toml"
  render "$c/cni-bridge.conflist" "$STATE/cni/net.d/10-goapp-bridge.conflist"
  render "$c/kubelet.yaml" "$STATE/config/kubelet.yaml"
  render "$c/kube-proxy.yaml" "$STATE/config/kube-proxy.yaml"
  render "$c/registry.yml" "$STATE/config/registry.yml"
  render "$c/Corefile" "$STATE/config/Corefile"
  render "$c/authentication.yaml" "$STATE/config/authentication.yaml"
  render "$tools/manifests/storage.yaml" "$STATE/config/storage.yaml"
  render "$tools/manifests/dns.yaml" "$STATE/config/dns.yaml"
  render "$tools/manifests/netpol.yaml" "$STATE/config/netpol.yaml"
  render "$c/prometheus.yml" "$STATE/config/prometheus.yml"
  render "$c/kwok-config.yaml" "$STATE/config/kwok-config.yaml"
  local m
  for m in traefik prometheus kwok; do render "$tools/manifests/$m.yaml" "$STATE/config/$m.yaml"; done
}

# After setup_pki: the APIService embeds the cluster CA.
write_pki_configs() {
  CLUSTER_CA_BUNDLE=$(base64 -w0 "$STATE/pki/ca.crt") render "$tools/manifests/metrics-server.yaml" "$STATE/config/metrics-server.yaml"
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

etcd_healthy() {
  local d="$STATE/pki"
  curl -fsS --cacert "$d/etcd-ca.crt" --cert "$d/etcd-healthcheck-client.crt" --key "$d/etcd-healthcheck-client.key" \
    "https://$ETCD_CLIENT/health"
}

# Secrets written before encryption at rest was turned on are rewritten once, encrypted.
encrypt_existing_secrets() {
  local marker="$STATE/pki/encryption-config.applied"
  cmp -s "$marker" "$STATE/pki/encryption-config.yaml" && return 0
  local existing; existing=$(kc get secrets --all-namespaces -o json)
  if grep -q '"kind": "Secret"' <<<"$existing"; then
    log "rewriting existing Secrets so that etcd holds them encrypted"
    kc replace -f - >/dev/null <<<"$existing"
  fi
  install -m 600 "$STATE/pki/encryption-config.yaml" "$marker"
}

# The add-ons, once the node and its network policy run: the Gateway API CRDs, then every add-on's
# RBAC and objects (none starts without its permissions), then the processes.
start_addons() {
  local crd
  kc apply --server-side --force-conflicts -f "$GATEWAY_CRDS" >/dev/null
  for crd in gatewayclasses gateways httproutes grpcroutes referencegrants backendtlspolicies; do
    kc wait --for condition=Established --timeout 60s "crd/$crd.gateway.networking.k8s.io" >/dev/null
  done
  kc apply --server-side --force-conflicts -f "$STATE/config/traefik.yaml" -f "$STATE/config/metrics-server.yaml" \
    -f "$STATE/config/prometheus.yaml" -f "$STATE/config/kwok.yaml" >/dev/null
  start kwok
  start metrics-server
  start prometheus
  start traefik
  wait_for "KWOK (see $STATE/logs/kwok.log)" 60 curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"
  wait_for "Prometheus (see $STATE/logs/prometheus.log)" 60 curl -fsS "http://$PROMETHEUS_ADDR/-/ready"
  wait_for "the metrics API (see $STATE/logs/metrics-server.log)" 120 \
    kc wait --for condition=Available --timeout 5s apiservice/v1beta1.metrics.k8s.io
  wait_for "Traefik (see $STATE/logs/traefik.log)" 60 traefik_ready
}

# Traefik answers on its entryPoint (404 for a path no route matches) and has accepted the Gateway.
traefik_ready() {
  [[ $(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$TRAEFIK_WEB_PORT/goapp-cluster-readiness") == 404 ]] &&
    kc wait --for condition=Programmed --timeout 5s -n traefik gateway/local
}

netpol_ready() {
  ipt -S KUBE-ROUTER-FORWARD >/dev/null && ipt -S FORWARD | grep -q -- '-j KUBE-ROUTER-FORWARD'
}

# ---------------------------------------------------------------- verbs

node_ready_since() { # RFC 3339 UTC time
  local ready
  ready=$(kc get node "$NODE_NAME" -o jsonpath='{range .status.conditions[?(@.type=="Ready")]}{.status} {.lastHeartbeatTime}{end}')
  [[ ${ready%% *} == True && ! ${ready#* } < $1 ]]
}

# A failed `up` stops what it started, so it never leaves a half-started cluster behind (what ran
# before it keeps running).
on_up_exit() {
  local rc=$?
  ((rc != 0)) && [[ -n ${STARTED_NOW// /} ]] || return "$rc"
  log "up failed: stopping what it started:${STARTED_NOW//  / }"
  # shellcheck disable=SC2086 # a list of component names
  stop_components $STARTED_NOW || true
  exit "$rc"
}

cmd_up() {
  local started; started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  ensure_root
  whole_seconds CLUSTER_UP_TIMEOUT "$UP_TIMEOUT"
  take_lock up
  trap on_up_exit EXIT
  ensure_packages
  "$tools/build.sh" all
  load_bins
  PAUSE_IMAGE="$K8S_REGISTRY/goapp/pause:$(basename "$(dirname "$NODE_BIN")" | sed 's/^node-//')"
  mkdir -p "$STATE"
  check_ports_free
  ensure_accounts
  setup_host_network
  write_configs
  grant_traverse
  setup_pki
  write_pki_configs
  setup_ownership

  start registry
  start etcd
  start containerd
  wait_for "registry on $K8S_REGISTRY" 30 curl -fsS "http://$K8S_REGISTRY/v2/"
  wait_for etcd 60 etcd_healthy
  wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version
  import_pause_image
  push_pause_image

  start kube-apiserver
  wait_for kube-apiserver 120 kc get --raw /readyz
  encrypt_existing_secrets
  start api-bridge
  start kube-controller-manager
  start kube-scheduler
  start kubelet
  start kube-proxy
  # RBAC first, so the provisioner, CoreDNS and kube-router never start without their permissions.
  kc apply --server-side --force-conflicts -f "$STATE/config/storage.yaml" -f "$STATE/config/dns.yaml" \
    -f "$STATE/config/netpol.yaml" >/dev/null
  start provisioner
  start coredns

  log "waiting for node $NODE_NAME to be Ready"
  # After a stop the node object still says Ready from before: when this `up` started the kubelet,
  # only a status that it reported since then counts.
  [[ $STARTED_NOW == *" kubelet "* ]] || started=0
  wait_for "node $NODE_NAME Ready (see $STATE/logs/kubelet.log)" "$UP_TIMEOUT" node_ready_since "$started"
  # kube-router reads the node object at start.
  start kube-router
  wait_for "network policy controller (see $STATE/logs/kube-router.log)" 60 netpol_ready
  wait_for "default StorageClass $K8S_STORAGE_CLASS" 60 kc get storageclass "$K8S_STORAGE_CLASS"
  wait_for "cluster DNS" 60 curl -fsS "http://127.0.0.1:$COREDNS_READY_PORT/ready"
  start_addons
  local c
  for c in "${COMPONENTS[@]}"; do running "$c" || die "$c exited; see $STATE/logs/$c.log"; done
  trap - EXIT
  log "cluster is up: KUBECONFIG=$KUBECONFIG_PATH registry=$K8S_REGISTRY storageClass=$K8S_STORAGE_CLASS"
  log "add-ons: Gateway traefik/local and IngressClass traefik on http://127.0.0.1:$TRAEFIK_WEB_PORT, Prometheus on http://$PROMETHEUS_ADDR, metrics.k8s.io, KWOK"
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

# A sandbox created while the kubelet stopped can outlive containerd: its shim (named by our
# containerd's socket) and the processes under it are killed by pid.
kill_leftover_shims() {
  local pid child
  for pid in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
    for child in $(pgrep -P "$pid" || true); do kill -KILL "$child" 2>/dev/null || true; done
    kill -KILL "$pid" 2>/dev/null || true
  done
}

stop_components() { # components...: stopped in a safe order (agents, control plane, pods, runtime, data)
  local c
  local -a agents=() control=() base=()
  for c in traefik prometheus metrics-server kwok kube-router coredns provisioner kube-proxy kubelet kube-scheduler \
    kube-controller-manager; do
    in_list "$c" "$@" && agents+=("$c")
  done
  for c in kube-apiserver api-bridge; do in_list "$c" "$@" && control+=("$c"); done
  for c in containerd etcd registry; do in_list "$c" "$@" && base+=("$c"); done
  # Control plane and node agents first (the kubelet must not restart the pods we stop), then
  # the pods, then the runtime and storage.
  stop_group "${agents[@]}"
  stop_group "${control[@]}"
  if in_list containerd "$@" || in_list kubelet "$@"; then kill_pod_tasks; fi
  stop_group "${base[@]}"
  ! in_list containerd "$@" || kill_leftover_shims
}

cmd_stop() {
  ensure_root
  [[ -d $STATE ]] || { log "no cluster state in $STATE: nothing to stop"; return 0; }
  take_lock stop
  load_bins
  stop_components "${COMPONENTS[@]}"
  log "cluster stopped; data kept in $STATE"
}

# The cluster's iptables chains: the KUBE-* chains of its kubelet, kube-proxy and kube-router and
# this script's GOAPP-* chains, with the rules that jump to them. No other chain is touched.
remove_cluster_chains() {
  local ipt t rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for t in filter nat mangle; do
      "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [A-Za-z0-9_-]+ .*-j (KUBE|GOAPP)-' | grep -Ev '^-A (KUBE|GOAPP)-' |
        while read -r rule; do eval "$ipt -w 10 -t $t -D ${rule#-A }" 2>/dev/null || true; done || true
      "$ipt-save" -t "$t" 2>/dev/null | sed -En 's/^:((KUBE|GOAPP)-[^ ]*) .*/\1/p' | while read -r chain; do
        "$ipt" -w 10 -t "$t" -F "$chain" 2>/dev/null || true
      done || true
      "$ipt-save" -t "$t" 2>/dev/null | sed -En 's/^:((KUBE|GOAPP)-[^ ]*) .*/\1/p' | while read -r chain; do
        "$ipt" -w 10 -t "$t" -X "$chain" 2>/dev/null || true
      done || true
    done
  done
  # kube-router's address sets, once no rule refers to them.
  command -v ipset >/dev/null || return 0
  ipset list -n 2>/dev/null | grep -E '^KUBE-(SRC|DST)-' | while read -r chain; do
    ipset destroy "$chain" 2>/dev/null || log "could not destroy ipset $chain"
  done || true
}

# The kubelet's cgroups (kubepods and its QoS classes), empty once every pod is gone.
remove_pod_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null || log "could not remove cgroup $d"
  done
}

cmd_delete() {
  ensure_root
  if [[ ! -d $STATE ]] && ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    remove_own_policy_rc_d
    log "no cluster to delete"; return 0
  fi
  take_lock delete
  load_bins
  if [[ -d $STATE ]]; then stop_components "${COMPONENTS[@]}"; fi
  # Network namespaces of pods: the ones holding an address of our pod range.
  local ns m
  for ns in /var/run/netns/cni-*; do
    [[ -e $ns ]] || continue
    if ip netns exec "$(basename "$ns")" ip -4 -o addr 2>/dev/null | grep -q " ${NODE_IP%.*}\."; then
      while mountpoint -q "$ns"; do umount "$ns" 2>/dev/null || umount -l "$ns" || break; done
      rm -f "$ns" 2>/dev/null || log "could not remove $ns (mounted elsewhere?)"
    fi
  done
  # Mounts left by kubelet volumes and container root filesystems, deepest first.
  awk -v s="$STATE/" 'index($2, s) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  [[ ! -x $KUBE_BIN/kube-proxy ]] || "$KUBE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  remove_cluster_chains
  ! ip link show "$BRIDGE" >/dev/null 2>&1 || ip link del "$BRIDGE"
  remove_routes
  remove_pod_cgroups
  if awk -v s="$STATE/" 'index($2, s) == 1 {f=1} END {exit !f}' /proc/self/mounts; then
    die "mounts under $STATE remain; not removing it"
  fi
  restore_sysctls
  remove_node_leftovers
  remove_created_dirs
  revoke_traverse
  remove_accounts
  remove_own_policy_rc_d
  rm -rf "$STATE"
  log "cluster deleted and the host restored (binaries stay cached in $CACHE/k8s)"
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
  # (No line may start with a component's name: callers read "<component> <state>" lines.)
  echo "way in                   http://127.0.0.1:$TRAEFIK_WEB_PORT (Traefik: Gateway traefik/local, IngressClass traefik)"
  echo "query API                http://$PROMETHEUS_ADDR (Prometheus)"
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
