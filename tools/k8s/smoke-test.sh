#!/usr/bin/env bash
# Proves that the local cluster (tools/k8s/cluster.sh up) does what goapp's deployment needs:
#   - an image built by Docker FROM scratch and pushed to the local registry runs in a pod;
#   - a namespace enforcing the restricted Pod Security Standard rejects a privileged pod;
#   - a claim of the default StorageClass binds and the pod writes to it as uid 65532 (fsGroup);
#   - a NodePort Service answers on 127.0.0.1;
#   - a Deployment rollout (changed env) completes and the new pod serves;
#   - cluster DNS resolves the Service from inside a pod, and a pod reaches the API server
#     through the kubernetes Service (Jobs).
# Needs a running cluster and Docker. Cleans up its namespace, also after a failure.
# Usage: tools/k8s/smoke-test.sh
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=/dev/null
source "$repo/versions.env"
eval "$("$repo/tools/k8s/build.sh" print-bin-dirs)"
export KUBECONFIG
KUBECONFIG=$("$repo/tools/k8s/cluster.sh" kubeconfig-path)
kubectl() { "$KUBE_BIN/kubectl" "$@"; }
ns=goapp-smoke
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "ok   - $*"; }
fail() { failed=$((failed + 1)); echo "FAIL - $*"; }
cleanup() {
  kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null 2>&1 || true
  [[ -z ${ctx:-} ]] || rm -rf "$ctx"
}
trap cleanup EXIT

[[ -f $KUBECONFIG ]] || { echo "no cluster kubeconfig at $KUBECONFIG: run tools/k8s/cluster.sh up" >&2; exit 1; }
docker version >/dev/null 2>&1 || { echo "Docker is not running (tools/docker/up.sh starts it)" >&2; exit 1; }
kubectl delete namespace "$ns" --ignore-not-found --wait=true --timeout=120s >/dev/null

# Image: a static binary FROM scratch, built by Docker and pushed to the local registry.
ctx=$(mktemp -d)
(cd "$repo/tools/k8s/smoke" && CGO_ENABLED=0 go build -trimpath -o "$ctx/smoke" .)
cp "$repo/tools/k8s/smoke/Dockerfile" "$ctx/"
image="$K8S_REGISTRY/goapp-smoke:$(date +%s)"
if docker build -q -t "$image" "$ctx" >/dev/null && docker push -q "$image" >/dev/null; then
  ok "docker built and pushed $image"
else
  fail "docker build/push of $image"; exit 1
fi

kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
EOF
# Pods are refused until the namespace's default ServiceAccount exists.
for _ in $(seq 60); do kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1 && break; sleep 0.5; done

if out=$(kubectl -n "$ns" run privileged --image="$image" --restart=Never \
    --overrides='{"spec":{"containers":[{"name":"privileged","image":"'"$image"'","securityContext":{"privileged":true}}]}}' 2>&1); then
  fail "restricted namespace admitted a privileged pod"
elif grep -q 'violates PodSecurity "restricted' <<<"$out"; then
  ok "restricted Pod Security rejects a privileged pod"
else
  fail "privileged pod rejected for another reason: $out"
fi

kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 64Mi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: smoke
spec:
  replicas: 1
  selector:
    matchLabels: {app: smoke}
  template:
    metadata:
      labels: {app: smoke}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        fsGroup: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: smoke
          image: $image
          env:
            - {name: MESSAGE, value: first}
            - {name: DATA_DIR, value: /data}
          ports:
            - containerPort: 8080
          readinessProbe:
            httpGet: {path: /, port: 8080}
            periodSeconds: 2
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: {drop: [ALL]}
          volumeMounts:
            - {name: data, mountPath: /data}
      volumes:
        - name: data
          persistentVolumeClaim: {claimName: data}
---
apiVersion: v1
kind: Service
metadata:
  name: smoke
spec:
  type: NodePort
  selector: {app: smoke}
  ports:
    - port: 80
      targetPort: 8080
EOF

if kubectl -n "$ns" wait pvc/data --for=jsonpath='{.status.phase}'=Bound --timeout=60s >/dev/null; then
  ok "claim bound to $(kubectl -n "$ns" get pvc data -o jsonpath='{.spec.volumeName}') (class $(kubectl -n "$ns" get pvc data -o jsonpath='{.spec.storageClassName}'))"
else
  fail "claim not Bound: $(kubectl -n "$ns" describe pvc data | tail -5)"
fi

if kubectl -n "$ns" rollout status deployment/smoke --timeout=180s >/dev/null; then
  ok "deployment ready (image pulled from $K8S_REGISTRY)"
else
  fail "deployment not ready: $(kubectl -n "$ns" describe pods | tail -15)"
fi

port=$(kubectl -n "$ns" get service smoke -o jsonpath='{.spec.ports[0].nodePort}')
get() { curl -fs --max-time 5 --retry 10 --retry-delay 1 --retry-all-errors "http://127.0.0.1:$port/"; }
if body=$(get) && [[ $body == "first uid=65532 gid=65532 files=1" ]]; then
  ok "NodePort 127.0.0.1:$port answers '$body' (volume written as uid 65532)"
else
  fail "NodePort 127.0.0.1:$port answered '${body:-}' (expected: first uid=65532 gid=65532 files=1)"
fi

kubectl -n "$ns" set env deployment/smoke MESSAGE=second >/dev/null
served_second() { # kube-proxy drops the old pod's endpoint a moment after the rollout completes
  for _ in $(seq 30); do body=$(get) && [[ $body == second* ]] && return 0; sleep 1; done
  return 1
}
if kubectl -n "$ns" rollout status deployment/smoke --timeout=180s >/dev/null && served_second; then
  ok "rollout of a changed env serves '$body'"
else
  fail "rollout: served '${body:-}'"
fi

# A Job under the restricted profile running the smoke image with the given arguments (a YAML flow list).
apply_job() { # name args
  kubectl -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: $1
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: Never
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        seccompProfile: {type: RuntimeDefault}
      containers:
        - name: $1
          image: $image
          args: $2
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
EOF
}

apply_job resolve "[resolve, smoke.$ns.svc.cluster.local]"
cluster_ip=$(kubectl -n "$ns" get service smoke -o jsonpath='{.spec.clusterIP}')
if kubectl -n "$ns" wait job/resolve --for=condition=Complete --timeout=90s >/dev/null &&
   kubectl -n "$ns" logs job/resolve | grep -q "$cluster_ip"; then
  ok "cluster DNS: $(kubectl -n "$ns" logs job/resolve)"
else
  fail "cluster DNS job: $(kubectl -n "$ns" logs job/resolve 2>&1 | tail -3)"
fi

apply_job apiversion "[apiversion]"
if kubectl -n "$ns" wait job/apiversion --for=condition=Complete --timeout=90s >/dev/null &&
   kubectl -n "$ns" logs job/apiversion | grep -qx "kubernetes $K8S_VERSION"; then
  ok "a pod reaches the API server through the kubernetes Service: $(kubectl -n "$ns" logs job/apiversion)"
else
  fail "in-cluster API access: $(kubectl -n "$ns" logs job/apiversion 2>&1 | tail -3)"
fi

pv=$(kubectl -n "$ns" get pvc data -o jsonpath='{.spec.volumeName}')
cleanup
if [[ -n $pv ]] && kubectl wait "pv/$pv" --for=delete --timeout=60s >/dev/null 2>&1; then
  ok "namespace deleted and volume $pv reclaimed"
else
  fail "volume $pv still present after the namespace was deleted"
fi

echo "$passed passed, $failed failed"
((failed == 0))
