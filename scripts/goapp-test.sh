#!/usr/bin/env bash
# goapp's code checks: gofmt, go mod tidy, go vet, the race-enabled test suite, a short run of every fuzz target and one
# pass of every benchmark. Exits non-zero on the first failure.
#   GOAPP_FUZZTIME   fuzzing budget per target (default 3000x, about 5-10 s each here)
#   GOAPP_BENCHTIME  iterations per benchmark in the smoke pass (default 20x)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
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
  "FuzzAccessLine ./internal/logging"
)
for entry in "${fuzz_targets[@]}"; do
  read -r target pkg <<<"$entry"
  step "fuzz $target for $fuzztime"
  "${go_nice[@]}" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
done

step "benchmarks, one short pass ($benchtime)"
"${go_nice[@]}" test -run '^$' -bench . -benchtime "$benchtime" ./...

printf '\ngoapp: all checks passed\n'
