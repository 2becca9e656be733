#!/usr/bin/env bash
# goapp's code checks: gofmt, go mod tidy, go vet, the race-enabled test suite, a short run of every fuzz target, the
# black-box tests (real processes; needs root for its tmpfs), the API contract (schemathesis against a live goapp on
# 127.0.0.1) and one pass of every benchmark. Exits non-zero on the first failure.
#   GOAPP_FUZZTIME   fuzzing budget per target (default 3000x, about 5-10 s each here)
#   GOAPP_BENCHTIME  iterations per benchmark in the smoke pass (default 20x)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root/goapp"
# A count, not a duration: with a duration, Go 1.26's fuzz coordinator can fail a clean run with "context
# deadline exceeded" at the deadline (Go issue 75804, fixed in Go 1.27); a count has no deadline to race.
fuzztime="${GOAPP_FUZZTIME:-3000x}"
benchtime="${GOAPP_BENCHTIME:-20x}"
# The machine is shared with other heavy builds.
go_nice=(nice -n 10 go)

step() { printf '\n== goapp: %s\n' "$*"; }

step "gofmt"
unformatted="$(gofmt -l .)"
if [ -n "$unformatted" ]; then
  echo "gofmt would reformat these files (run: gofmt -w goapp):" >&2
  echo "$unformatted" >&2
  exit 1
fi

step "go.mod and go.sum are tidy"
if ! go mod tidy -diff; then
  echo "go.mod/go.sum are not tidy (run: cd goapp && go mod tidy)" >&2
  exit 1
fi

step "go vet"
"${go_nice[@]}" vet ./...
"${go_nice[@]}" vet -tags blackbox ./blackbox

step "go test -race"
if ! command -v gcc >/dev/null 2>&1; then
  echo "goapp: installing gcc, which the race detector (cgo) needs" >&2
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends install gcc libc6-dev
fi
# The race detector needs cgo.
CGO_ENABLED=1 "${go_nice[@]}" test -race -count=1 ./...

# Each fuzz target with its package; the committed corpus under testdata/fuzz already ran above as seeds.
fuzz_targets=(
  "FuzzStore ./internal/notes"
  "FuzzNoteRequest ./internal/server"
  "FuzzDocumentedPatterns ./internal/server"
  "FuzzBearerToken ./internal/server"
  "FuzzParse ./internal/liveconfig"
  "FuzzAccessLine ./internal/logging"
)
for entry in "${fuzz_targets[@]}"; do
  read -r target pkg <<<"$entry"
  step "fuzz $target for $fuzztime"
  "${go_nice[@]}" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
done

step "black-box: goapp processes sharing one directory, and a tmpfs for the full and read-only volume"
if [ "$(id -u)" != 0 ]; then
  echo "goapp: the black-box tests mount a tmpfs and need root" >&2
  exit 1
fi
"${go_nice[@]}" test -tags blackbox -count=1 ./blackbox

step "API contract: schemathesis against a live goapp on 127.0.0.1 (goapp/schemathesis.toml)"
"$root/tools/python/venv.sh"
work="$(mktemp -d)"
goapp_pid=""
stop_goapp() {
  if [ -n "$goapp_pid" ]; then kill "$goapp_pid" 2>/dev/null && wait "$goapp_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap stop_goapp EXIT
CGO_ENABLED=0 "${go_nice[@]}" build -trimpath -o "$work/goapp" .
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
token="$(head -c 30 /dev/urandom | base64 | tr '+/' '-_')"
HOST=127.0.0.1 PORT="$port" DATA_DIR="$work/data" NOTES_TOKEN="$token" SHUTDOWN_DRAIN=0s LOG_LEVEL=warn \
  "$work/goapp" >"$work/goapp.log" 2>&1 &
goapp_pid=$!
# Run from the scratch directory: schemathesis keeps its example database in the working directory.
if ! (cd "$work" && "$root/.venv/bin/st" --config-file "$root/goapp/schemathesis.toml" run \
  "http://127.0.0.1:$port/openapi.yaml" --url "http://127.0.0.1:$port" --wait-for-schema 30 \
  --header "Authorization: Bearer $token" --checks all); then
  echo "== goapp's log:" >&2
  tail -n 50 "$work/goapp.log" >&2
  exit 1
fi
stop_goapp
goapp_pid=""
trap - EXIT

step "benchmarks, one short pass ($benchtime)"
"${go_nice[@]}" test -run '^$' -bench . -benchtime "$benchtime" ./...

printf '\ngoapp: all checks passed\n'
