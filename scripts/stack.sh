#!/usr/bin/env bash
# Run the real Pulumi engine on one stack: preview, up, down, render, or any pulumi command.
#
#   scripts/stack.sh preview [STACK] [pulumi flags…]   pulumi preview
#   scripts/stack.sh up      [STACK] [pulumi flags…]   pulumi up --yes (builds, pushes and deploys)
#   scripts/stack.sh down    [STACK] [pulumi flags…]   pulumi destroy --yes
#   scripts/stack.sh render  [STACK] [pulumi flags…]   pulumi up --yes in render mode: YAML under dist/STACK/
#   scripts/stack.sh render-preview [STACK] [flags…]   pulumi preview in render mode
#   scripts/stack.sh exec    [STACK] -- <pulumi args…> any pulumi command against the stack
#
# STACK defaults to local. State lives in the local file backend under .pulumi-state/ unless
# PULUMI_BACKEND_URL says otherwise; render mode keeps its own state under .pulumi-state/render/ so a
# rendering never touches the state of a real deployment. Stack secrets use the passphrase provider;
# PULUMI_CONFIG_PASSPHRASE defaults to empty for this repository's example stacks (see README).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
action="${1:?usage: scripts/stack.sh preview|up|down|render|render-preview|exec [STACK] [args]}"
stack="${2:-local}"
shift $(( $# >= 2 ? 2 : $# ))
[[ "${1:-}" == "--" ]] && shift

if [[ ! -f "$repo/stacks/Pulumi.$stack.yaml" ]]; then
  echo "stack: unknown stack '$stack'; stacks/ has: $(cd "$repo/stacks" && ls Pulumi.*.yaml | sed 's/Pulumi\.\(.*\)\.yaml/\1/' | xargs)" >&2
  exit 2
fi

"$repo/scripts/venv.sh"
eval "$("$repo/scripts/bootstrap-pulumi.sh")"
# The program runs in the project's virtualenv; activating it makes every language host use it.
export VIRTUAL_ENV="$repo/.venv" PATH="$repo/.venv/bin:$PATH"

export PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE-}"
export GOAPP_VERSION="${GOAPP_VERSION:-$(git -C "$repo" describe --tags --always --dirty 2>/dev/null || echo dev)}"
export GOAPP_COMMIT="${GOAPP_COMMIT:-$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)}"

case "$action" in
  render|render-preview)
    export PULUMI_BACKEND_URL="file://$repo/.pulumi-state/render"
    export GOAPP_RENDER_DIR="$repo/dist/$stack"
    ;;
  *)
    export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-file://$repo/.pulumi-state}"
    ;;
esac
mkdir -p "${PULUMI_BACKEND_URL#file://}" 2>/dev/null || true

# Building the image needs Docker and, here, the local base-image stand-ins.
if [[ "$action" == up || "$action" == preview ]] && [[ -z "${GOAPP_IMAGE_DIGEST:-}" ]]; then
  "$repo/scripts/docker-up.sh"
  [[ "$stack" == local ]] && "$repo/scripts/base-images.sh" >/dev/null
fi

cd "$repo"
pulumi stack select --create --secrets-provider passphrase "$stack" --non-interactive >/dev/null

# A rendering always starts from empty state, so dist/STACK/ holds every object, not only what changed.
if [[ "$action" == render ]]; then
  pulumi stack rm --force --yes --preserve-config --stack "$stack" --non-interactive >/dev/null 2>&1 || true
  rm -rf "$repo/dist/$stack"
  pulumi stack select --create --secrets-provider passphrase "$stack" --non-interactive >/dev/null
fi

case "$action" in
  preview|render-preview) exec pulumi preview --stack "$stack" --non-interactive --diff "$@" ;;
  up|render) exec pulumi up --stack "$stack" --non-interactive --yes --skip-preview "$@" ;;
  down) exec pulumi destroy --stack "$stack" --non-interactive --yes "$@" ;;
  exec) exec pulumi "$@" --stack "$stack" ;;
  *) echo "stack: unknown action '$action' (allowed: preview, up, down, render, render-preview, exec)" >&2; exit 2 ;;
esac
