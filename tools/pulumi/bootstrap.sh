#!/usr/bin/env bash
# Make the real Pulumi engine available offline: the CLI, the Python language host (with the exec script it
# runs beside it) and the Kubernetes resource plugin, built from the Go module proxy into the goapp cache,
# keyed by the pins in versions.env; then install the plugin into the project's Pulumi home.
#
# Every step is skipped when its output already exists for the same pins and build module, so a warm run
# takes about a second. A `pulumi` already on PATH is used instead of building one when it reports exactly
# PULUMI_VERSION and ships its Python language host beside it.
#
# stdout carries only `export` lines for the caller to eval (the Makefile does); progress and timings go
# to stderr, build logs to $GOAPP_CACHE/pulumi/logs/.
#
# Usage: tools/pulumi/bootstrap.sh [--print-env]
#   --print-env  print the environment only; fail if anything is not built and installed yet
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=SCRIPTDIR/../../versions.env
source "$repo/versions.env"

mode=build
case "${1:-}" in
  "") ;;
  --print-env) mode=print ;;
  *) echo "bootstrap-pulumi: unknown argument '$1' (allowed: --print-env)" >&2; exit 2 ;;
esac

for pin in PULUMI_VERSION PULUMI_LANGUAGE_PYTHON_SDK_VERSION PULUMI_KUBERNETES_VERSION \
  PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION; do
  if [[ -z "${!pin:-}" ]]; then
    echo "bootstrap-pulumi: $pin is not set in versions.env" >&2
    exit 1
  fi
done

cache="${GOAPP_CACHE:-$HOME/.cache/goapp}"
root="$cache/pulumi"
cli_bin="$root/cli-$PULUMI_VERSION/bin"
k8s_dir="$root/resource-kubernetes-$PULUMI_KUBERNETES_VERSION"
logs="$root/logs"
pulumi_home="${PULUMI_HOME:-$cache/pulumi-home}"
modules="$repo/tools/pulumi"

# The Go caches are shared with the project's other builds; each build runs from a copy of its module in
# the cache so that generated files never land in the repository.
export GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build"
# The staged copies resolve their modules freely (-mod=mod); the caller's other GOFLAGS are kept.
goflags=()
for flag in ${GOFLAGS:-}; do
  [[ "$flag" == -mod=* ]] || goflags+=("$flag")
done
export GOFLAGS="${goflags[*]} -mod=mod" CGO_ENABLED=0
unset GOOS GOARCH

log() { echo "bootstrap-pulumi: $*" >&2; }

# A build key changes whenever a pin or the build module changes, so a stale binary is rebuilt.
build_key() { # <module dir> <pins...>
  local dir="$1"; shift
  { echo "$*"; cat "$dir/go.mod" "$dir/go.sum"; go version; } | sha256sum | cut -c1-16
}

fresh() { # <binary> <key>
  [[ -x "$1" && -f "$1.key" && "$(cat "$1.key")" == "$2" ]]
}

stage_module() { # <module dir> <name> -> prints a fresh copy's path
  local stage="$root/src/$2"
  rm -rf "$stage"
  mkdir -p "$stage"
  cp -R "$1/." "$stage/"
  echo "$stage"
}

require_module_version() { # <stage> <module> <wanted version>
  local got
  got="$(cd "$1" && go list -m -f '{{.Version}}' "$2")"
  if [[ "$got" != "$3" ]]; then
    log "tools/pulumi/$(basename "$1")/go.mod requires $2 $got but versions.env pins $3: make them equal"
    exit 1
  fi
}

timed_build() { # <label> <log name> <command...>
  local label="$1" logfile="$logs/$2.log"; shift 2
  local start=$SECONDS
  log "building $label (log: $logfile)"
  if ! nice -n 10 "$@" >"$logfile" 2>&1; then
    tail -n 30 "$logfile" >&2
    log "building $label failed; full log: $logfile"
    exit 1
  fi
  log "built $label in $((SECONDS - start))s"
}

have_matching_pulumi() {
  local found dir
  found="$(command -v pulumi 2>/dev/null)" || return 1
  dir="$(dirname "$found")"
  [[ "$dir" != "$cli_bin" ]] || return 1
  [[ "$("$found" version 2>/dev/null)" == "v$PULUMI_VERSION" ]] || return 1
  [[ -x "$dir/pulumi-language-python" && -e "$dir/pulumi-language-python-exec" ]]
}

build_cli() {
  local key stage sdk_dir
  key="$(build_key "$modules/cli" "$PULUMI_VERSION")"
  if fresh "$cli_bin/pulumi" "$key" && [[ -x "$cli_bin/pulumi-language-python-exec" ]]; then return; fi
  stage="$(stage_module "$modules/cli" cli)"
  require_module_version "$stage" github.com/pulumi/pulumi/pkg/v3 "v$PULUMI_VERSION"
  require_module_version "$stage" github.com/pulumi/pulumi/sdk/v3 "v$PULUMI_VERSION"
  mkdir -p "$cli_bin"
  timed_build "pulumi v$PULUMI_VERSION" pulumi \
    env -C "$stage" go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
    -o "$cli_bin/pulumi.new" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  # The exec script belongs to the Python SDK side: take it from the same release as the pinned SDK.
  sdk_dir="$(cd "$stage" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
  install -m 0755 "$sdk_dir/python/cmd/pulumi-language-python-exec" "$cli_bin/pulumi-language-python-exec"
  mv "$cli_bin/pulumi.new" "$cli_bin/pulumi"
  echo "$key" >"$cli_bin/pulumi.key"
}

build_language_host() {
  local key stage
  key="$(build_key "$modules/langhost" "$PULUMI_LANGUAGE_PYTHON_SDK_VERSION")"
  if fresh "$cli_bin/pulumi-language-python" "$key"; then return; fi
  stage="$(stage_module "$modules/langhost" langhost)"
  require_module_version "$stage" github.com/pulumi/pulumi/sdk/v3 "v$PULUMI_LANGUAGE_PYTHON_SDK_VERSION"
  mkdir -p "$cli_bin"
  timed_build "pulumi-language-python (sdk v$PULUMI_LANGUAGE_PYTHON_SDK_VERSION)" pulumi-language-python \
    env -C "$stage" go build -trimpath \
    -ldflags "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_LANGUAGE_PYTHON_SDK_VERSION" \
    -o "$cli_bin/pulumi-language-python.new" github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
  mv "$cli_bin/pulumi-language-python.new" "$cli_bin/pulumi-language-python"
  echo "$key" >"$cli_bin/pulumi-language-python.key"
}

build_kubernetes_plugin() {
  local key stage provider src out="$k8s_dir/pulumi-resource-kubernetes"
  key="$(build_key "$modules/kubernetes" "$PULUMI_KUBERNETES_VERSION" "$PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION")"
  if fresh "$out" "$key"; then return; fi
  provider=github.com/pulumi/pulumi-kubernetes/provider/v4
  stage="$(stage_module "$modules/kubernetes" kubernetes)"
  require_module_version "$stage" "$provider" "$PULUMI_KUBERNETES_PROVIDER_MODULE_VERSION"
  (cd "$stage" && go mod download "$provider")
  src="$(cd "$stage" && go list -m -f '{{.Dir}}' "$provider")/cmd/pulumi-resource-kubernetes"
  timed_build "the kubernetes schema for v$PULUMI_KUBERNETES_VERSION" kubernetes-schema \
    env -C "$stage" go run ./cmd/embed-schema -src "$src" -out ./cmd/pulumi-resource-kubernetes \
    -version "$PULUMI_KUBERNETES_VERSION"
  mkdir -p "$k8s_dir"
  timed_build "pulumi-resource-kubernetes v$PULUMI_KUBERNETES_VERSION" pulumi-resource-kubernetes \
    env -C "$stage" go build -trimpath \
    -ldflags "-s -w -X $provider/pkg/version.Version=$PULUMI_KUBERNETES_VERSION" \
    -o "$out.new" ./cmd/pulumi-resource-kubernetes
  mv "$out.new" "$out"
  echo "$key" >"$out.key"
}

# Installs a plugin binary unless the identical binary is already installed for that version.
install_plugin() { # <name> <version> <binary>
  local name="$1" version="$2" binary="$3"
  local installed="$pulumi_home/plugins/resource-$name-v$version/pulumi-resource-$name"
  if [[ -f "$installed" ]] && cmp -s "$binary" "$installed"; then return; fi
  if [[ -e "$pulumi_home/plugins/resource-$name-v$version" ]]; then
    PULUMI_HOME="$pulumi_home" "$pulumi" plugin rm resource "$name" "$version" --yes >&2
  fi
  log "installing resource plugin $name $version into $pulumi_home"
  PULUMI_HOME="$pulumi_home" "$pulumi" plugin install resource "$name" "$version" --file "$binary" >&2
}

print_env() { # <dir holding pulumi>
  cat <<EOF
export PATH="$1:\$PATH"
export PULUMI_HOME="$pulumi_home"
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_IGNORE_AMBIENT_PLUGINS=true
export PULUMI_SKIP_UPDATE_CHECK=true
EOF
}

if have_matching_pulumi; then
  pulumi="$(command -v pulumi)"
else
  pulumi="$cli_bin/pulumi"
fi
pulumi_dir="$(dirname "$pulumi")"

if [[ "$mode" == print ]]; then
  for needed in "$pulumi" "$pulumi_dir/pulumi-language-python" \
    "$pulumi_home/plugins/resource-kubernetes-v$PULUMI_KUBERNETES_VERSION/pulumi-resource-kubernetes"; do
    if [[ ! -x "$needed" ]]; then
      log "$needed is missing: run tools/pulumi/bootstrap.sh without --print-env first"
      exit 1
    fi
  done
  print_env "$pulumi_dir"
  exit 0
fi

mkdir -p "$root" "$logs" "$pulumi_home"
# Serialise concurrent bootstraps (parallel make targets, CI) on one cache.
exec 9>"$root/.lock"
flock 9

if [[ "$pulumi" == "$cli_bin/pulumi" ]]; then
  build_cli
  build_language_host
else
  log "using $pulumi (v$PULUMI_VERSION) and the language host beside it"
fi
build_kubernetes_plugin
install_plugin kubernetes "$PULUMI_KUBERNETES_VERSION" "$k8s_dir/pulumi-resource-kubernetes"

print_env "$pulumi_dir"
