#!/usr/bin/env bash
# Benchmarks (`make bench`): every figure is a ratio against a baseline measured in the same run, because this
# machine is shared and noisy; absolute numbers are recorded but never claimed.
#
#   scripts/bench.sh [all]      setup, then every part below, then the report
#   scripts/bench.sh setup      install the pinned tools (wrk, benchstat, the chart's venv); idempotent
#   scripts/bench.sh service    wrk: goapp /hello vs a bare net/http baseline (and bare Gin, and net/http with
#                               goapp's server deadlines); notes GET and PUT
#   scripts/bench.sh image      image size vs stripped binary; warm rebuild vs cold build
#   scripts/bench.sh engine     render-mode preview of dev vs a one-resource floor; 1, 5, 20 services; unit suite
#   scripts/bench.sh cluster    warm `make up`; rollout of a config change on the local cluster
#   scripts/bench.sh go         goapp's Go benchmarks into bench/go-bench.txt (benchstat format)
#   scripts/bench.sh report     bench/results.md and bench/latency.png from bench/data/
#
# Each part rewrites only its own bench/data/<part>.tsv (one line per measurement: metric, subject, run,
# value, unit) and bench/data/<part>.status ("measured" or "not measured: <reason>"), so one part can be
# re-run alone and the report still shows the others. A part whose dependency is missing records why and the
# script goes on with the next part.
#
# Knobs (environment): BENCH_RUNS (default 5, at least 5 for published figures), BENCH_DURATION (wrk run,
# default 10s), BENCH_WARMUP (default 2s), BENCH_CONNECTIONS (default 64), BENCH_IMAGE_RUNS (default
# BENCH_RUNS), BENCH_CLIENT_CPU / BENCH_SERVER_CPU (default 0 / 1), BENCH_GO_COUNT (default 6) and
# BENCH_GO_BENCHTIME (default 1s) for the Go benchmarks, BENCH_OUT (default bench/: where data/, results.md,
# latency.png and go-bench.txt are written; tests/test_bench.py points it at a temporary directory).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=../versions.env
source "$repo/versions.env"

cache="${GOAPP_CACHE:-$HOME/.cache/goapp}"
bench_cache="$cache/bench"
tools="$bench_cache/bin"
venv="$cache/bench-venv"
# Where results go: bench/ by default (the published report); elsewhere for a smoke run that must not touch it.
out_dir="${BENCH_OUT:-$repo/bench}"
data="$out_dir/data"

runs="${BENCH_RUNS:-5}"
image_runs="${BENCH_IMAGE_RUNS:-$runs}"
duration="${BENCH_DURATION:-10s}"
warmup="${BENCH_WARMUP:-2s}"
connections="${BENCH_CONNECTIONS:-64}"
go_count="${BENCH_GO_COUNT:-6}"
go_benchtime="${BENCH_GO_BENCHTIME:-1s}"
client_cpu="${BENCH_CLIENT_CPU:-0}"
server_cpu="${BENCH_SERVER_CPU:-1}"

log() { echo "bench: $*" >&2; }
current_part=""
# Inside a part, a failure is recorded as that part's status, so the report says what broke.
die() {
  log "$*"
  if [[ -n "$current_part" ]]; then echo "not measured: failed: $*" >"$data/$current_part.status"; fi
  exit 1
}

for knob in runs image_runs connections client_cpu server_cpu go_count; do
  [[ "${!knob}" =~ ^[0-9]+$ ]] || die "BENCH_${knob^^}=${!knob}: want a non-negative integer"
done
(( runs >= 1 && image_runs >= 1 && go_count >= 1 )) || die "BENCH_RUNS, BENCH_IMAGE_RUNS and BENCH_GO_COUNT must be at least 1"
[[ "$go_benchtime" =~ ^[0-9]+(ms|s|x)$ ]] || die "BENCH_GO_BENCHTIME=$go_benchtime: want a go test -benchtime such as 1s, 200ms or 100x"
for knob in duration warmup; do
  [[ "${!knob}" =~ ^[0-9]+[smh]$ ]] || die "BENCH_${knob^^}=${!knob}: want a wrk duration such as 10s"
done

for pin in BENCH_WRK_DEBIAN_VERSION BENCH_BENCHSTAT_VERSION BENCH_MATPLOTLIB_VERSION; do
  [[ -n "${!pin:-}" ]] || die "$pin is not set in versions.env (Benchmarks section)"
done

# Every temporary file of this invocation lives here, and every server it started is stopped on exit.
work="$(mktemp -d "${TMPDIR:-/tmp}/goapp-bench.XXXXXX")"
started_pids=()
# goapp's notes API wants a bearer token (NOTES_TOKEN); one per invocation, sent by curl and by bench.lua.
notes_token="bench-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
# The part's command logs outlive the temporary directory, for looking into a surprising figure.
keep_logs() { # <part>
  local dest="$bench_cache/logs/$1"
  rm -rf "$dest" && mkdir -p "$dest"
  find "$work" -maxdepth 1 -name '*.log' -exec cp {} "$dest/" \;
}

stop_started() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap 'rm -rf "$work"' EXIT

# --- recording -----------------------------------------------------------------------------------------

part_begin() { # <part>: start a part's records afresh
  mkdir -p "$data"
  printf 'metric\tsubject\trun\tvalue\tunit\n' >"$data/$1.tsv"
  echo "running" >"$data/$1.status"
  record "$1" load1_start machine 0 "$(cut -d' ' -f1 /proc/loadavg)" load
}

record() { # <part> <metric> <subject> <run> <value> <unit>
  printf '%s\t%s\t%s\t%s\t%s\n' "$2" "$3" "$4" "$5" "$6" >>"$data/$1.tsv"
}

part_measured() { # <part>
  record "$1" load1_end machine 0 "$(cut -d' ' -f1 /proc/loadavg)" load
  echo "measured $(date -u +%Y-%m-%dT%H:%MZ)" >"$data/$1.status"
  log "$1: done"
}

part_not_measured() { # <part> <reason>
  echo "not measured: $2" >"$data/$1.status"
  log "$1: not measured: $2"
}

# A command array as the line a reader would paste into a shell: words with anything but plain characters go in
# single quotes (`${array[*]}` would drop the quoting that words like '^$' need).
command_line() { # <word...>
  local word line=""
  for word in "$@"; do
    [[ "$word" =~ ^[A-Za-z0-9_./=:,+-]+$ ]] || word="'${word//\'/\'\\\'\'}'"
    line+="${line:+ }$word"
  done
  echo "$line"
}

# Wall time of a command in seconds with millisecond resolution; the command's output goes to <log>.
timed() { # <log> <command...>  -> prints seconds; fails with the command
  local logfile="$1" start end; shift
  start="$(date +%s.%N)"
  "$@" >"$logfile" 2>&1 || return 1
  end="$(date +%s.%N)"
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}

# --- setup ---------------------------------------------------------------------------------------------

install_wrk() {
  if [[ "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null)" == "$BENCH_WRK_DEBIAN_VERSION" ]]; then return; fi
  log "installing Debian's wrk $BENCH_WRK_DEBIAN_VERSION"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
    "wrk=$BENCH_WRK_DEBIAN_VERSION" >&2 ||
    { apt-get -o DPkg::Lock::Timeout=600 update >&2 &&
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends \
        "wrk=$BENCH_WRK_DEBIAN_VERSION" >&2; } ||
    die "cannot install wrk=$BENCH_WRK_DEBIAN_VERSION from Debian (see apt-cache policy wrk)"
}

install_benchstat() {
  local dir="$tools/benchstat-$BENCH_BENCHSTAT_VERSION"
  if [[ -x "$dir/benchstat" ]]; then return; fi
  log "installing benchstat (golang.org/x/perf $BENCH_BENCHSTAT_VERSION)"
  mkdir -p "$dir"
  GOBIN="$dir" GOFLAGS=-mod=mod nice -n 10 go install \
    "golang.org/x/perf/cmd/benchstat@$BENCH_BENCHSTAT_VERSION" >&2 ||
    die "cannot install benchstat golang.org/x/perf@$BENCH_BENCHSTAT_VERSION"
}

install_venv() {
  local stamp="$venv/.requirements.sha256" want
  want="$(sha256sum "$repo/bench/requirements.txt" | cut -d' ' -f1)"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then return; fi
  grep -qx "matplotlib==$BENCH_MATPLOTLIB_VERSION" "$repo/bench/requirements.txt" ||
    die "bench/requirements.txt must pin matplotlib==$BENCH_MATPLOTLIB_VERSION (BENCH_MATPLOTLIB_VERSION)"
  log "installing bench/requirements.txt into $venv"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$repo/bench/requirements.txt" >&2
  echo "$want" >"$stamp"
}

setup() {
  install_wrk
  install_benchstat
  install_venv
}

benchstat_bin() { echo "$tools/benchstat-$BENCH_BENCHSTAT_VERSION/benchstat"; }

machine() {
  mkdir -p "$data"
  {
    printf 'key\tvalue\n'
    printf 'nproc\t%s\n' "$(nproc)"
    printf 'cpu\t%s\n' "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'memory\t%s GiB\n' "$(awk '/^MemTotal/ { printf "%.0f", $2 / 1048576 }' /proc/meminfo)"
    printf 'os\t%s\n' "$(. /etc/os-release && echo "$PRETTY_NAME")"
    printf 'go\t%s\n' "$(go env GOVERSION)"
    printf 'wrk\t%s\n' "$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo missing)"
    printf 'benchstat\tgolang.org/x/perf %s\n' "$BENCH_BENCHSTAT_VERSION"
    printf 'matplotlib\t%s\n' "$BENCH_MATPLOTLIB_VERSION"
    printf 'docker\t%s\n' "$(docker version --format '{{.Server.Version}}' 2>/dev/null || echo 'not running')"
    printf 'pulumi\t%s (kubernetes provider %s)\n' "$PULUMI_VERSION" "$PULUMI_KUBERNETES_VERSION"
    printf 'python\t%s\n' "$(python3 -c 'import platform; print(platform.python_version())')"
  } >"$data/machine.tsv"
}

# --- service -------------------------------------------------------------------------------------------

# Servers are built like the image builds goapp (static, stripped, trimpath).
build_servers() {
  log "building goapp and the baseline"
  (cd "$repo/goapp" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$work/goapp" .)
  (cd "$repo/bench/baseline" && CGO_ENABLED=0 nice -n 10 go build -trimpath -ldflags "-s -w" -o "$work/baseline" .)
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

server_pid=""
server_port=""

# goapp's server deadlines: the defaults in goapp/internal/config, given to goapp and to the deadline floor
# alike (as environment and as flags), so that the two run with the same ones by construction.
server_timeouts=(read-header-timeout=5s read-timeout=10s write-timeout=10s idle-timeout=120s)

timeouts_as_env() { # READ_HEADER_TIMEOUT=5s … for goapp
  local t name
  for t in "${server_timeouts[@]}"; do
    name="${t%%=*}" && name="${name^^}"
    printf '%s=%s\n' "${name//-/_}" "${t#*=}"
  done
}

timeouts_as_flags() { # -read-header-timeout 5s … for the baseline
  local t
  for t in "${server_timeouts[@]}"; do printf -- '-%s\n%s\n' "${t%%=*}" "${t#*=}"; done
}

start_server() { # <goapp|goapp-quiet|baseline|timeouts|gin> <run>
  local kind="$1" run="$2" ready i
  local -a timeouts_env timeouts_flags=()
  mapfile -t timeouts_env < <(timeouts_as_env)
  server_port="$(free_port)"
  case "$kind" in
    goapp|goapp-quiet)
      mkdir -p "$work/data-$run"
      # Settings as shipped (info-level JSON access log, here to /dev/null), except no drain on stop; the
      # quiet variant only raises LOG_LEVEL to warn, which drops the per-request access log line.
      env GOMAXPROCS=1 HOST=127.0.0.1 PORT="$server_port" DATA_DIR="$work/data-$run" SHUTDOWN_DRAIN=0 \
        NOTES_TOKEN="$notes_token" "${timeouts_env[@]}" \
        LOG_LEVEL="$([[ "$kind" == goapp-quiet ]] && echo warn || echo info)" \
        taskset -c "$server_cpu" "$work/goapp" >/dev/null 2>>"$work/goapp.stderr" &
      ready="/readyz"
      ;;
    baseline|timeouts|gin)
      # The same binary is every floor: bare net/http (with goapp's server deadlines for the timeouts
      # subject), or a bare Gin engine (no middleware).
      if [[ "$kind" == timeouts ]]; then mapfile -t timeouts_flags < <(timeouts_as_flags); fi
      env GOMAXPROCS=1 taskset -c "$server_cpu" "$work/baseline" -addr "127.0.0.1:$server_port" \
        -router "$([[ "$kind" == gin ]] && echo gin || echo nethttp)" "${timeouts_flags[@]}" \
        2>>"$work/$kind.stderr" &
      ready="/hello"
      ;;
  esac
  server_pid=$!
  started_pids+=("$server_pid")
  for i in $(seq 1 100); do
    if curl -fsS --max-time 1 "http://127.0.0.1:$server_port$ready" >/dev/null 2>&1; then return; fi
    kill -0 "$server_pid" 2>/dev/null || die "$kind exited at start; stderr: $(tail -n 5 "$work/$kind.stderr")"
    sleep 0.1
  done
  die "$kind did not answer $ready on 127.0.0.1:$server_port within 10s"
}

stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}

# One wrk run pinned to the client core; its full output is kept under bench/data/wrk/.
wrk_run() { # <url> <seconds> <output file> [VAR=value...]  (environment for bench.lua)
  local url="$1" length="$2" out="$3"; shift 3
  env "$@" taskset -c "$client_cpu" wrk -t1 -c"$connections" -d"$length" --timeout 5s --latency \
    -s "$repo/bench/wrk/bench.lua" "$url" >"$out" 2>&1 || die "wrk failed on $url: $(tail -n 5 "$out")"
}

record_wrk() { # <subject> <run> <wrk output>
  local subject="$1" run="$2" out="$3" requests duration_us errors
  requests="$(awk '$1 == "BENCH" && $2 == "requests" { print $3 }' "$out")"
  duration_us="$(awk '$1 == "BENCH" && $2 == "duration_us" { print $3 }' "$out")"
  [[ -n "$requests" && -n "$duration_us" ]] || die "no BENCH summary in $out (wrk without bench.lua?)"
  errors="$(awk '$1 == "BENCH" && $2 == "errors" { print }' "$out")"
  # Any failed request makes the run meaningless: a fast error is not a fast answer.
  [[ "$errors" == "BENCH errors connect=0 read=0 write=0 status=0 timeout=0" ]] ||
    die "$subject run $run had errors ($errors); see $out"
  record service rps "$subject" "$run" "$(awk -v r="$requests" -v d="$duration_us" 'BEGIN { printf "%.1f", r / (d / 1e6) }')" "req/s"
  awk -v s="$subject" -v r="$run" '$1 == "BENCH" && $2 == "latency_p" {
    printf "latency_p%s\t%s\t%s\t%s\tus\n", $3, s, r, $4 }' "$out" >>"$data/service.tsv"
}

record_rss() { # <subject> <run>
  local kb hwm
  kb="$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")"
  hwm="$(awk '/^VmHWM:/ { print $2 }' "/proc/$server_pid/status")"
  record service rss_end "$1" "$2" "$(awk -v k="$kb" 'BEGIN { printf "%.1f", k / 1024 }')" MiB
  record service rss_peak "$1" "$2" "$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')" MiB
}

# A measured run: fresh server, unrecorded warm-up, recorded run, resident memory, stop.
measure_subject() { # <subject> <run>
  local subject="$1" run="$2" kind path url out="$data/wrk/$1-$2.txt"
  local -a lua_env=(BENCH_METHOD=GET)
  case "$subject" in
    goapp-hello) kind=goapp path=/hello ;;
    goapp-quiet-hello) kind=goapp-quiet path=/hello ;;
    baseline-hello) kind=baseline path=/hello ;;
    timeouts-hello) kind=timeouts path=/hello ;;
    gin-hello) kind=gin path=/hello ;;
    goapp-notes-get) kind=goapp path=/notes/bench lua_env=(BENCH_METHOD=GET BENCH_TOKEN="$notes_token") ;;
    goapp-notes-put) kind=goapp path=/notes/bench-
      lua_env=(BENCH_METHOD=PUT BENCH_PUT_NAMES=64 BENCH_BODY_BYTES=256 BENCH_TOKEN="$notes_token") ;;
    *) die "unknown service subject '$subject'" ;;
  esac
  start_server "$kind" "$run"
  url="http://127.0.0.1:$server_port$path"
  if [[ "$subject" == goapp-notes-get ]]; then
    head -c 256 /dev/zero | tr '\0' n | curl -fsS -X PUT -H "Authorization: Bearer $notes_token" \
      --data-binary @- "http://127.0.0.1:$server_port/notes/bench" >/dev/null
  fi
  log "service: $subject run $run/$runs"
  wrk_run "$url" "$warmup" "$work/warmup.txt" "${lua_env[@]}"
  wrk_run "$url" "$duration" "$out" "${lua_env[@]}"
  record_wrk "$subject" "$run" "$out"
  record_rss "$subject" "$run"
  stop_server
}

answer_of() { # <goapp|baseline|timeouts|gin> -> "<content type> <body>" of its /hello
  local body type
  start_server "$1" 0
  body="$(curl -fsS "http://127.0.0.1:$server_port/hello")"
  type="$(curl -fsS -o /dev/null -w '%{content_type}' "http://127.0.0.1:$server_port/hello")"
  stop_server
  echo "$type $body"
}

check_same_answer() {
  local goapp floor kind
  goapp="$(answer_of goapp)"
  for kind in baseline timeouts gin; do
    floor="$(answer_of "$kind")"
    [[ "$floor" == "$goapp" ]] || die "$kind answers '$floor' but goapp answers '$goapp': make them equal"
  done
}

service() {
  local missing cores run subject
  local -a order=(baseline-hello timeouts-hello gin-hello goapp-hello goapp-quiet-hello goapp-notes-get goapp-notes-put)
  cores="$(nproc)"
  for missing in wrk taskset curl go; do
    if ! command -v "$missing" >/dev/null; then part_not_measured service "$missing is not installed (run scripts/bench.sh setup)"; return; fi
  done
  if (( client_cpu >= cores || server_cpu >= cores || client_cpu == server_cpu )); then
    part_not_measured service "needs two distinct cores (BENCH_CLIENT_CPU=$client_cpu, BENCH_SERVER_CPU=$server_cpu, nproc=$cores)"
    return
  fi
  part_begin service
  rm -rf "$data/wrk" && mkdir -p "$data/wrk"
  build_servers
  check_same_answer
  # Rounds alternate the order (A B C…, then …C B A) so a drift in machine load hits every subject alike.
  for run in $(seq 1 "$runs"); do
    if (( run % 2 == 1 )); then
      for subject in "${order[@]}"; do measure_subject "$subject" "$run"; done
    else
      for (( i = ${#order[@]} - 1; i >= 0; i-- )); do measure_subject "${order[i]}" "$run"; done
    fi
  done
  record service connections all 0 "$connections" connections
  record service duration all 0 "${duration%s}" s
  part_measured service
}

# --- image ---------------------------------------------------------------------------------------------

docker_build() { # <tag> <context> [docker build flags...]
  local tag="$1" context="$2"; shift 2
  DOCKER_BUILDKIT=0 nice -n 10 docker build "$@" --network host \
    --build-arg GO_IMAGE="$GO_IMAGE" --build-arg RUNTIME_IMAGE="$RUNTIME_IMAGE" \
    --build-arg GOPROXY="$(go env GOPROXY)" --build-arg VERSION=bench --build-arg COMMIT=bench \
    -t "$tag" "$context"
}

# CPU time of all Docker containers so far (cgroup v1 with the cgroupfs driver charges every build step's
# container to this group, also after it is removed). Wall time moves with the other builds on this machine;
# CPU time much less, so both are recorded. Empty when the group does not exist.
docker_cpu_ns() {
  local usage=/sys/fs/cgroup/cpuacct/docker/cpuacct.usage
  if [[ -r "$usage" ]]; then cat "$usage"; fi
}

timed_build() { # <metric> <run> <tag> <context> [docker build flags...]
  local metric="$1" run="$2" tag="$3" before after seconds; shift 2
  before="$(docker_cpu_ns)"
  seconds="$(timed "$work/$metric-$run.log" docker_build "$@")" ||
    die "$metric: docker build failed: $(tail -n 10 "$work/$metric-$run.log")"
  after="$(docker_cpu_ns)"
  record image "$metric" goapp "$run" "$seconds" s
  if [[ -n "$before" && -n "$after" ]]; then
    record image "${metric}_cpu" goapp "$run" "$(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')" s
  fi
  tags+=("$tag")
}

image() {
  local src="$work/goapp-src" run image_bytes binary_bytes container
  local -a tags=()
  if ! "$repo/scripts/docker-up.sh" >"$work/docker-up.log" 2>&1; then
    part_not_measured image "Docker is not available (scripts/docker-up.sh: $(tail -n 1 "$work/docker-up.log"))"
    return
  fi
  if ! "$repo/scripts/base-images.sh" >"$work/base-images.env" 2>"$work/base-images.log"; then
    part_not_measured image "base images are missing (scripts/base-images.sh: $(tail -n 1 "$work/base-images.log"))"
    return
  fi
  GO_IMAGE="$(awk -F= '$1 == "GO_IMAGE" { print $2 }' "$work/base-images.env")"
  RUNTIME_IMAGE="$(awk -F= '$1 == "RUNTIME_IMAGE" { print $2 }' "$work/base-images.env")"
  [[ -n "$GO_IMAGE" && -n "$RUNTIME_IMAGE" ]] || die "scripts/base-images.sh printed no GO_IMAGE=/RUNTIME_IMAGE= lines"
  part_begin image
  # The one-line change is made in a copy: the repository's goapp/ is never touched.
  cp -R "$repo/goapp" "$src"
  # Changed once before the first cold build too, so a constant that moved fails here, not after a build.
  "$repo/scripts/set-default-message.sh" "$src" "Hello from Gin! (bench 0)" ||
    die "cannot change DefaultMessage for the warm rebuild (see above)"
  for run in $(seq 1 "$image_runs"); do
    log "image: cold build run $run/$image_runs"
    timed_build cold_build "$run" "goapp-bench:cold-$run" "$src" --no-cache
    # A real code change (a constant, not a comment), one line, so the compile step must run again.
    "$repo/scripts/set-default-message.sh" "$src" "Hello from Gin! (bench $run)" || die "cannot change DefaultMessage"
    log "image: warm rebuild run $run/$image_runs"
    timed_build warm_rebuild "$run" "goapp-bench:warm-$run" "$src"
    grep -q 'Using cache' "$work/warm_rebuild-$run.log" || die "the warm rebuild used no cached layer"
  done
  image_bytes="$(docker image inspect -f '{{.Size}}' "goapp-bench:cold-$image_runs")"
  container="$(docker create "goapp-bench:cold-$image_runs")"
  docker cp "$container:/goapp" "$work/goapp.bin" >/dev/null
  docker rm "$container" >/dev/null
  # The binary must already be stripped (the Dockerfile links with -s -w), or the ratio flatters the image.
  if command -v readelf >/dev/null && readelf -S "$work/goapp.bin" | grep -q '\.symtab'; then
    die "the image's /goapp still has a symbol table: the ratio would be against an unstripped binary"
  fi
  binary_bytes="$(stat -c %s "$work/goapp.bin")"
  record image image_size goapp 1 "$image_bytes" bytes
  record image binary_size goapp 1 "$binary_bytes" bytes
  docker rmi "${tags[@]}" >/dev/null
  part_measured image
}

# --- engine --------------------------------------------------------------------------------------------

# Each program gets its own local state and stack config file in the temporary directory (a copy of
# stacks/Pulumi.dev.yaml for goapp), so neither stacks/ nor .pulumi-state/ in the repository is touched.
preview() { # <project dir> <stack> <config file> -> seconds
  (cd "$1" && timed "$work/preview-$2.log" pulumi preview --stack "$2" --non-interactive --diff --config-file "$3")
}

engine() {
  local run seconds digest
  if ! "$repo/scripts/venv.sh" >"$work/venv.log" 2>&1; then
    part_not_measured engine "the project's .venv cannot be made (scripts/venv.sh: $(tail -n 1 "$work/venv.log"))"
    return
  fi
  if ! "$repo/scripts/bootstrap-pulumi.sh" >"$work/pulumi.env" 2>"$work/bootstrap.log"; then
    part_not_measured engine "the Pulumi engine is not built (scripts/bootstrap-pulumi.sh: $(tail -n 1 "$work/bootstrap.log"))"
    return
  fi
  part_begin engine
  # shellcheck disable=SC1091
  source "$work/pulumi.env"
  export PULUMI_CONFIG_PASSPHRASE="" GOAPP_VERSION=bench GOAPP_COMMIT=bench
  digest="sha256:$(printf 'goapp-bench' | sha256sum | cut -d' ' -f1)"
  export GOAPP_IMAGE_DIGEST="$digest"
  # Both programs run in the project's virtualenv, as scripts/stack.sh arranges.
  export VIRTUAL_ENV="$repo/.venv" PATH="$repo/.venv/bin:$PATH"

  # `stack init` writes the stack's config file, so it runs beside copies: goapp's Pulumi.yaml and stack file
  # for dev (the preview then runs the repository's program with --config-file), the whole floor program.
  mkdir -p "$work/dev/stacks" "$work/floor" "$work/state-dev" "$work/state-floor"
  cp "$repo/Pulumi.yaml" "$work/dev/"
  cp "$repo/stacks/Pulumi.dev.yaml" "$work/dev/stacks/"
  cp "$repo/bench/floor/Pulumi.yaml" "$repo/bench/floor/__main__.py" "$work/floor/"
  ln -s "$repo/.venv" "$work/floor/.venv"
  (cd "$work/dev" && PULUMI_BACKEND_URL="file://$work/state-dev" \
    pulumi stack init --secrets-provider passphrase dev --non-interactive >/dev/null)
  (cd "$work/floor" && PULUMI_BACKEND_URL="file://$work/state-floor" \
    pulumi stack init --secrets-provider passphrase floor --non-interactive >/dev/null)

  preview_dev() {
    PULUMI_BACKEND_URL="file://$work/state-dev" GOAPP_RENDER_DIR="$work/render-dev" \
      preview "$repo" dev "$work/dev/stacks/Pulumi.dev.yaml"
  }
  preview_floor() {
    PULUMI_BACKEND_URL="file://$work/state-floor" BENCH_RENDER_DIR="$work/render-floor" \
      preview "$work/floor" floor "$work/floor/Pulumi.floor.yaml"
  }
  # One unrecorded preview each warms the page cache and writes Python's bytecode caches.
  log "engine: warm-up previews"
  preview_dev >/dev/null || die "preview of dev failed: $(tail -n 15 "$work/preview-dev.log")"
  preview_floor >/dev/null || die "preview of the floor failed: $(tail -n 15 "$work/preview-floor.log")"
  record engine resources dev 0 "$(resource_count "$work/preview-dev.log")" resources
  record engine resources floor 0 "$(resource_count "$work/preview-floor.log")" resources

  for run in $(seq 1 "$runs"); do
    log "engine: previews run $run/$runs"
    if (( run % 2 == 1 )); then
      seconds="$(preview_dev)" || die "preview of dev failed: $(tail -n 15 "$work/preview-dev.log")"
      record engine preview dev "$run" "$seconds" s
      seconds="$(preview_floor)" || die "preview of the floor failed: $(tail -n 15 "$work/preview-floor.log")"
      record engine preview floor "$run" "$seconds" s
    else
      seconds="$(preview_floor)" || die "preview of the floor failed: $(tail -n 15 "$work/preview-floor.log")"
      record engine preview floor "$run" "$seconds" s
      seconds="$(preview_dev)" || die "preview of dev failed: $(tail -n 15 "$work/preview-dev.log")"
      record engine preview dev "$run" "$seconds" s
    fi
  done

  # What each added service costs: the components composed 1, 5 and 20 times (bench/services), interleaved.
  local count counts=(1 5 20)
  mkdir -p "$work/services" "$work/state-services"
  cp "$repo/bench/services/Pulumi.yaml" "$repo/bench/services/__main__.py" "$work/services/"
  ln -s "$repo/.venv" "$work/services/.venv"
  preview_services() { # <count>
    PULUMI_BACKEND_URL="file://$work/state-services" BENCH_SERVICES="$1" BENCH_RENDER_DIR="$work/render-services-$1" \
      preview "$work/services" "services-$1" "$work/services/Pulumi.services-$1.yaml"
  }
  for count in "${counts[@]}"; do
    (cd "$work/services" && PULUMI_BACKEND_URL="file://$work/state-services" \
      pulumi stack init --secrets-provider passphrase "services-$count" --non-interactive >/dev/null)
    preview_services "$count" >/dev/null ||
      die "preview of $count services failed: $(tail -n 15 "$work/preview-services-$count.log")"
    record engine resources "services-$count" 0 "$(resource_count "$work/preview-services-$count.log")" resources
  done
  for run in $(seq 1 "$runs"); do
    log "engine: previews of 1, 5 and 20 services, run $run/$runs"
    # Rotate the order, so no count always runs first or last in a round.
    for index in 0 1 2; do
      count="${counts[$(( (index + run) % 3 ))]}"
      seconds="$(preview_services "$count")" ||
        die "preview of $count services failed: $(tail -n 15 "$work/preview-services-$count.log")"
      record engine preview "services-$count" "$run" "$seconds" s
    done
  done

  # The same selection as `make unit`, read from the Makefile so the two cannot drift apart.
  local selection
  selection="$(sed -n 's/^UNIT_TESTS := //p' "$repo/Makefile")"
  [[ -n "$selection" ]] || die "the Makefile defines no UNIT_TESTS := <pytest marker expression>"
  local -a unit_command=(.venv/bin/python -m pytest -q -m "$selection" tests)
  command_line "${unit_command[@]}" >"$data/unit-command.txt"
  for run in $(seq 1 "$runs"); do
    log "engine: unit suite run $run/$runs"
    seconds="$(cd "$repo" && timed "$work/unit.log" "${unit_command[@]}")" ||
      die "the unit suite failed: $(tail -n 15 "$work/unit.log")"
    record engine unit_suite pytest "$run" "$seconds" s
  done
  record engine unit_tests pytest 0 "$(grep -oE '[0-9]+ passed' "$work/unit.log" | tail -n 1 | cut -d' ' -f1)" tests
  part_measured engine
}

# Resources in a preview: the "N to create" summary line (a fresh stack creates everything).
resource_count() { # <preview log>
  grep -oE '^ *\+ [0-9]+ to create' "$1" | grep -oE '[0-9]+' | head -n 1 || echo 0
}

# --- cluster -------------------------------------------------------------------------------------------

# A rollout is over when clients see the new setting: the message /hello answers through the NodePort.
rollout() { # <config file> <url> <expected message>
  local i
  "$repo/scripts/stack.sh" up local --config-file "$1" || return 1
  echo "bench: pulumi up returned after $(awk -v a="$rollout_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }') s"
  for i in $(seq 1 1800); do
    if curl -fsS --max-time 2 "$2/hello" 2>/dev/null | grep -qF "$3"; then return 0; fi
    sleep 0.1
  done
  echo "bench: $2/hello did not answer '$3' within 180s" >&2
  return 1
}

cluster() {
  local run seconds message rollout_start config="$work/Pulumi.local.yaml" url=http://127.0.0.1:30080
  if ! "$repo/scripts/cluster.sh" status >"$work/cluster-status.log" 2>&1 ||
    grep -qE '^(apiserver|kube-apiserver|kubelet) +stopped' "$work/cluster-status.log"; then
    part_not_measured cluster "the local cluster is not running (scripts/cluster.sh status: $(grep -m1 -E 'stopped|error' "$work/cluster-status.log" || tail -n 1 "$work/cluster-status.log"))"
    return
  fi
  # A first `make up` (not recorded) makes the later ones warm: image cached, stack deployed.
  log "cluster: first make up (warm-up, not recorded)"
  if ! make -C "$repo" up >"$work/up-0.log" 2>&1; then
    part_not_measured cluster "make up fails: $(grep -m1 -iE 'error' "$work/up-0.log" || tail -n 1 "$work/up-0.log")"
    return
  fi
  part_begin cluster
  for run in $(seq 1 "$runs"); do
    log "cluster: warm make up run $run/$runs"
    seconds="$(timed "$work/up-$run.log" make -C "$repo" up)" || die "make up failed: $(tail -n 15 "$work/up-$run.log")"
    record cluster warm_make_up local "$run" "$seconds" s
  done

  # The config change goes through the engine into a copy of the stack's config file; stacks/ is not edited.
  cp "$repo/stacks/Pulumi.local.yaml" "$config"
  for run in $(seq 1 "$runs"); do
    message="Hello from the local stack! (bench rollout $run, $(date +%s))"
    "$repo/scripts/stack.sh" exec local -- config set --path "goapp:env.APP_MESSAGE" "$message" \
      --config-file "$config" >"$work/config-set.log" 2>&1 || die "pulumi config set failed: $(tail -n 5 "$work/config-set.log")"
    log "cluster: config change rollout run $run/$runs"
    rollout_start="$(date +%s.%N)"
    seconds="$(timed "$work/rollout-$run.log" rollout "$config" "$url" "$message")" ||
      die "rollout failed: $(tail -n 15 "$work/rollout-$run.log")"
    record cluster config_pulumi_up local "$run" \
      "$(awk '/^bench: pulumi up returned after/ { print $6 }' "$work/rollout-$run.log")" s
    grep -qE 'Deployment.*updat' "$work/rollout-$run.log" ||
      die "the config change did not update the Deployment; pulumi's output: $bench_cache/logs/cluster/rollout-$run.log"
    record cluster config_rollout local "$run" "$seconds" s
  done
  log "cluster: restoring the stack's own config"
  "$repo/scripts/stack.sh" up local >"$work/restore.log" 2>&1 || die "restoring the local stack failed: $(tail -n 15 "$work/restore.log")"
  part_measured cluster
}

# --- go ------------------------------------------------------------------------------------------------

go_benchmarks() {
  local out="$out_dir/go-bench.txt" count
  if ! grep -rqs --include='*_test.go' '^func Benchmark' "$repo/goapp"; then
    part_not_measured go "goapp/ has no Go benchmarks (no func Benchmark... in any *_test.go)"
    return
  fi
  part_begin go
  local -a command=(go test -run '^$' -bench . -benchmem -benchtime "$go_benchtime" -count "$go_count" ./...)
  echo "cd goapp && $(command_line "${command[@]}")" >"$data/go-command.txt"
  log "go: $(command_line "${command[@]}")"
  (cd "$repo/goapp" && nice -n 10 "${command[@]}") >"$work/go-bench.txt" 2>&1 ||
    die "go test -bench failed: $(tail -n 15 "$work/go-bench.txt")"
  mv "$work/go-bench.txt" "$out"
  count="$(grep -c '^Benchmark' "$out")"
  record go benchmark_lines goapp 0 "$count" lines
  # Run beside the file so benchstat's column header is the file's name, not this machine's path.
  (cd "$out_dir" && "$(benchstat_bin)" go-bench.txt) >"$data/go-benchstat.txt" || die "benchstat cannot read $out"
  part_measured go
}

# --- report --------------------------------------------------------------------------------------------

report() {
  machine
  "$venv/bin/python" "$repo/bench/report.py" --data "$data" --out "$out_dir/results.md" \
    --chart "$out_dir/latency.png"
  log "wrote $out_dir/results.md and $out_dir/latency.png"
}

# --- main ----------------------------------------------------------------------------------------------

# Each part runs in a subshell: a failing part records why and stops only itself (and the servers it
# started); the others still run and the report is still written, then the script fails.
failed=()
run_part() { # <part> <function>
  if ! ( current_part="$1"; trap 'stop_started; keep_logs "$current_part"' EXIT; "$2" ); then
    failed+=("$1")
  fi
}

# The whole run is one function called on the last line, so bash has parsed everything before it starts: an
# edit of this file during a long run cannot change what the run does.
main() {
  local cmd="${1:-all}"
  case "$cmd" in
    setup) setup; exit 0 ;;
    service) setup; run_part service service ;;
    image) setup; run_part image image ;;
    engine) setup; run_part engine engine ;;
    cluster) setup; run_part cluster cluster ;;
    go) setup; run_part go go_benchmarks ;;
    report) setup ;;
    all)
      setup
      run_part service service
      run_part image image
      run_part engine engine
      run_part cluster cluster
      run_part go go_benchmarks
      ;;
    *) die "unknown part '$cmd' (allowed: all, setup, service, image, engine, cluster, go, report)" ;;
  esac
  report
  if (( ${#failed[@]} > 0 )); then
    die "failed parts: ${failed[*]} (the reasons are in bench/results.md)"
  fi
}

main "$@"; exit $?
