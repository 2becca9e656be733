#!/usr/bin/env bash
# `make up`: deploy a stack (default local) with the real engine and print where it answers.
#
# For the local stack pointed at this machine's cluster (the default kubeconfig in
# stacks/Pulumi.local.yaml), the cluster and its registry on 127.0.0.1:5000 are started first.
# Pointed at another cluster (kind, minikube, a cloud), the stack is deployed there as it is.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stack="${1:-local}"
cache="${GOAPP_CACHE:-$HOME/.cache/goapp}"

"$repo/scripts/venv.sh"
# The stack's own settings decide: read them the way the program does.
read -r kubeconfig url < <("$repo/.venv/bin/python" - "$repo/stacks/Pulumi.$stack.yaml" <<'PY'
import os, sys, yaml
config = (yaml.safe_load(open(sys.argv[1])) or {}).get("config") or {}
target = (config.get("goapp:kubernetes") or {}).get("kubeconfig") or ""
print(os.path.expanduser(target) or "-", config.get("goapp:url") or "-")
PY
)

if [[ "$kubeconfig" == "$cache/cluster/kubeconfig" ]]; then
  "$repo/scripts/cluster.sh" up
fi

# --refresh: the local cluster may have been deleted and recreated since the last deployment.
"$repo/scripts/stack.sh" up "$stack" --refresh

if [[ "$url" == "-" ]]; then
  echo "Deployed stack $stack. It has no goapp:url; outputs:" >&2
  "$repo/scripts/stack.sh" exec "$stack" -- stack output >&2
  exit 0
fi

# pulumi up already waited for the Deployment's readiness; this proves the path from the client side.
ready=
for _ in $(seq 1 60); do
  if curl -fsS --max-time 2 "$url/readyz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 1
done
if [[ -z "$ready" ]]; then
  echo "up: deployed, but $url/readyz did not answer 200 within 60s" >&2
  exit 1
fi

# The notes API wants the stack's NOTES_TOKEN; prove the sample below works before printing it. The token itself
# is not printed: the command that reads it from the stack's (encrypted) config is.
token_cmd="scripts/stack.sh exec $stack -- config get --path 'goapp:secretEnv.NOTES_TOKEN'"
token="$(eval "$repo/$token_cmd" 2>/dev/null || true)"
if [[ -z "$token" ]]; then
  echo "up: the stack has no goapp:secretEnv.NOTES_TOKEN: the notes API answers 401 to everything" >&2
elif ! curl -fsS --max-time 5 -H "Authorization: Bearer $token" "$url/notes?limit=1" >/dev/null; then
  echo "up: $url/notes refused the stack's NOTES_TOKEN" >&2
  exit 1
fi
cat <<MSG

goapp ($stack) is ready at $url
  curl $url/hello
  TOKEN=\$($token_cmd)
  curl -X PUT -H "Authorization: Bearer \$TOKEN" --data 'first note' $url/notes/first
  curl -H "Authorization: Bearer \$TOKEN" $url/notes/first
MSG
curl -fsS --max-time 2 "$url/hello"
echo
