#!/usr/bin/env bash
# goapp's image test: build goapp/Dockerfile with the local base image stand-ins, then run the image the way
# Kubernetes will (read-only root file system, uid/gid 65532, only /data and /tmp writable) and check it.
# Prints one line per check, the image and binary sizes, and a closing "N passed, N failed" line; exits
# non-zero when any check fails. Needs root (it starts dockerd when none is running).
#   GOAPP_IMAGE_TAG  tag of the built image (default goapp:image-test)
#   GOAPP_VERSION    version stamped into the binary (default dev)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tag="${GOAPP_IMAGE_TAG:-goapp:image-test}"
version="${GOAPP_VERSION:-dev}"
commit="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
max_overhead_percent=10
export DOCKER_BUILDKIT=0

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
check() { # check DESCRIPTION COMMAND...: pass when the command succeeds
  local what="$1"
  shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}

"$root/tools/docker/up.sh"
eval "$("$root/tools/docker/base-images.sh")" # sets GO_IMAGE and RUNTIME_IMAGE

suffix="$$"
containers=()
volume="goapp-image-test-$suffix"
cleanup() {
  for c in "${containers[@]}"; do docker rm -f "$c" >/dev/null 2>&1 || true; done
  docker volume rm -f "$volume" >/dev/null 2>&1 || true
}
trap cleanup EXIT

echo "== building $tag from goapp/Dockerfile with GO_IMAGE=$GO_IMAGE RUNTIME_IMAGE=$RUNTIME_IMAGE"
build_log="$(mktemp)"
start=$(date +%s)
# Host networking lets `go mod download` in the builder reach the module proxy; GOPROXY and GOFLAGS are passed
# through only when the caller's environment sets them.
build_args=(--build-arg "GO_IMAGE=$GO_IMAGE" --build-arg "RUNTIME_IMAGE=$RUNTIME_IMAGE"
  --build-arg "VERSION=$version" --build-arg "COMMIT=$commit")
[ -n "${GOPROXY:-}" ] && build_args+=(--build-arg GOPROXY)
[ -n "${GOFLAGS:-}" ] && build_args+=(--build-arg GOFLAGS)
if ! nice -n 10 docker build --network=host "${build_args[@]}" -t "$tag" "$root/goapp" >"$build_log" 2>&1; then
  tail -n 30 "$build_log"
  fail "image builds"
  echo "image test: $passed passed, $failed failed"
  exit 1
fi
pass "image builds ($(($(date +%s) - start))s)"
rm -f "$build_log"

inspect() { docker image inspect -f "$1" "$tag"; }
check "runs as numeric user 65532:65532" test "$(inspect '{{.Config.User}}')" = "65532:65532"
check "exec-form entrypoint /goapp" test "$(inspect '{{json .Config.Entrypoint}}')" = '["/goapp"]'
# A Go template, not shell: its $p is docker's variable.
# shellcheck disable=SC2016
check "exposes 8080/tcp" test "$(inspect '{{range $p, $_ := .Config.ExposedPorts}}{{$p}}{{end}}')" = "8080/tcp"
check "HEALTHCHECK runs the healthcheck subcommand" \
  test "$(inspect '{{json .Config.Healthcheck.Test}}')" = '["CMD","/goapp","healthcheck"]'
check "OCI labels carry version and commit" test \
  "$(inspect '{{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Labels "org.opencontainers.image.revision"}}')" \
  = "$version $commit"
check "no shell in the image" bash -c "! docker run --rm --entrypoint /bin/sh '$tag' -c true >/dev/null 2>&1"

# A one-line code change must reuse the precompiled dependencies: build a copy whose greeting constant differs
# and require the dependency layer from the cache, then a different binary (the change was compiled in).
rebuild_cached_dependencies() {
  local copy log ok=0
  copy="$(mktemp -d)"
  log="$copy.log"
  cp -R "$root/goapp/." "$copy/"
  "$root/goapp/scripts/set-default-message.sh" "$copy" "Hello from the cache check!" || return 1
  if nice -n 10 docker build --network=host "${build_args[@]}" -t "$tag-rebuild" "$copy" >"$log" 2>&1 &&
    grep -A1 'RUN xargs go build' "$log" | grep -q 'Using cache' &&
    [ "$(docker image inspect -f '{{.Id}}' "$tag-rebuild")" != "$(inspect '{{.Id}}')" ]; then
    ok=1
  else
    tail -n 30 "$log"
  fi
  docker rmi "$tag-rebuild" >/dev/null 2>&1 || true
  rm -rf "$copy" "$log"
  [ "$ok" = 1 ]
}
check "a one-line change rebuilds on the cached dependency layer" rebuild_cached_dependencies

# Size: the final image against the stripped binary it carries.
probe="$(docker create "$tag")"
containers+=("$probe")
bin_dir="$(mktemp -d)"
docker cp "$probe:/goapp" "$bin_dir/goapp" >/dev/null
binary_size=$(stat -c %s "$bin_dir/goapp")
stripped=$(file "$bin_dir/goapp" | grep -c ', stripped' || true)
rm -rf "$bin_dir"
image_size=$(inspect '{{.Size}}')
overhead=$(((image_size - binary_size) * 1000 / binary_size))
printf 'size: image %d bytes (%.1f MiB), stripped binary %d bytes (%.1f MiB), image overhead %d.%d%%\n' \
  "$image_size" "$(echo "$image_size / 1048576" | bc -l)" "$binary_size" "$(echo "$binary_size / 1048576" | bc -l)" \
  $((overhead / 10)) $((overhead % 10))
check "binary is stripped" test "$stripped" = 1
check "image within ${max_overhead_percent}% of the binary" test $((image_size * 100)) -le $((binary_size * (100 + max_overhead_percent)))

docker volume create "$volume" >/dev/null
# The notes API's bearer token, as a stack's goapp:secretEnv injects it.
notes_token="$(head -c 30 /dev/urandom | base64 | tr '+/' '-_')"
run_app() { # run_app NAME [docker run options...]: the production-like container
  local name="$1"
  shift
  containers+=("$name")
  docker run -d --name "$name" --read-only --user 65532:65532 --tmpfs /tmp -v "$volume:/data" \
    -e NOTES_TOKEN="$notes_token" -p 127.0.0.1::8080 "$@" "$tag" >/dev/null
}
base_url() { echo "http://$(docker port "$1" 8080/tcp | head -n 1)"; }
http() { curl --noproxy '*' -sS --max-time 5 "$@"; }
notes() { http -H "Authorization: Bearer $notes_token" "$@"; }
wait_ready() { # wait_ready CONTAINER
  local url
  url="$(base_url "$1")"
  for _ in $(seq 100); do
    if [ "$(http -o /dev/null -w '%{http_code}' "$url/readyz" 2>/dev/null)" = 200 ]; then return 0; fi
    sleep 0.2
  done
  docker logs "$1" 2>&1 | tail -n 20
  return 1
}

app="goapp-image-test-$suffix"
run_app "$app"
check "container becomes ready (/readyz 200)" wait_ready "$app"
url="$(base_url "$app")"
check "/hello answers on 127.0.0.1" test "$(http "$url/hello")" = '{"message":"Hello from Gin!"}'
check "the notes API refuses a request without the token (401)" \
  test "$(http -o /dev/null -w '%{http_code}' -X PUT --data-binary 'x' "$url/notes/image-test")" = 401
check "a note is written to /data" test "$(notes -o /dev/null -w '%{http_code}' -X PUT --data-binary 'kept across restarts' "$url/notes/image-test")" = 201
check "the note reads back" test "$(notes "$url/notes/image-test")" = "kept across restarts"
check "/openapi.yaml is served" bash -c "curl --noproxy '*' -sS '$url/openapi.yaml' | grep -q '^openapi: 3.1.0'"
check "/version reports the stamped build" bash -c "curl --noproxy '*' -sS '$url/version' | grep -q '\"commit\":\"$commit\"'"
check "root file system is read-only" test "$(docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' "$app")" = true
check "healthcheck subcommand succeeds inside the container" docker exec "$app" /goapp healthcheck
check "healthcheck subcommand fails on a 404" bash -c "! docker exec '$app' /goapp healthcheck http://127.0.0.1:8080/missing 2>/dev/null"
wait_healthy() {
  for _ in $(seq 60); do
    [ "$(docker inspect -f '{{.State.Health.Status}}' "$app")" = healthy ] && return 0
    sleep 1
  done
  return 1
}
check "Docker HEALTHCHECK reports healthy" wait_healthy

start=$(date +%s)
docker stop -t 30 "$app" >/dev/null
check "SIGTERM stops gracefully with exit code 0 ($(($(date +%s) - start))s)" \
  test "$(docker inspect -f '{{.State.ExitCode}}' "$app")" = 0
check "shutdown is logged" bash -c "docker logs '$app' 2>/dev/null | grep -q '\"msg\":\"stopped\"'"

again="goapp-image-test-again-$suffix"
run_app "$again" -e APP_MESSAGE="second run"
check "second container on the same volume becomes ready" wait_ready "$again"
url="$(base_url "$again")"
check "the note survived the restart" test "$(notes "$url/notes/image-test")" = "kept across restarts"
check "APP_MESSAGE is honoured" test "$(http "$url/hello")" = '{"message":"second run"}'

# A data directory on the read-only root must keep the pod unready, with the cause in the log.
rootdata="goapp-image-test-rootdata-$suffix"
run_app "$rootdata" -e DATA_DIR=/var/lib/goapp
unready_on_readonly_root() {
  local url
  url="$(base_url "$rootdata")"
  for _ in $(seq 50); do
    if docker logs "$rootdata" 2>/dev/null | grep -q 'read-only file system'; then
      [ "$(http -o /dev/null -w '%{http_code}' "$url/readyz")" = 503 ] &&
        [ "$(http -o /dev/null -w '%{http_code}' "$url/healthz")" = 200 ]
      return
    fi
    sleep 0.2
  done
  return 1
}
check "DATA_DIR on the read-only root: unready (503), live (200), cause logged" unready_on_readonly_root

bad="goapp-image-test-bad-$suffix"
containers+=("$bad")
docker run --name "$bad" --read-only --user 65532:65532 -e PORT=http "$tag" >/dev/null 2>&1 || true
check "invalid configuration exits 1 before listening" test "$(docker inspect -f '{{.State.ExitCode}}' "$bad")" = 1
check "the error names the variable and its accepted form" \
  bash -c "docker logs '$bad' 2>&1 | grep -qx 'goapp: invalid PORT=\"http\": want an integer from 1 to 65535'"

echo "image test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
