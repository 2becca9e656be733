#!/usr/bin/env bash
# Make a Docker engine answer on this machine: install Debian's docker.io when the daemon binary is missing,
# start dockerd when no daemon answers, and wait until `docker info` works. Safe to run any number of times.
#
# Debian's docker.io (20.10) is the engine because no other can be installed here; its daemon still serves the
# classic (non-BuildKit) build API that the Dockerfile and pulumi-docker rely on. There is no init system on
# these machines, so dockerd is started directly, detached, with its log under the goapp cache.
set -euo pipefail

cache="${GOAPP_CACHE:-$HOME/.cache/goapp}"
log="$cache/dockerd.log"
wait_seconds="${DOCKER_UP_TIMEOUT:-60}"

if docker info >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-up: installing Debian's docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  # Other installers may hold the dpkg lock on a shared machine: wait for it rather than fail.
  apt_opts=(-o DPkg::Lock::Timeout=600 -y --no-install-recommends)
  if ! apt-get "${apt_opts[@]}" install docker.io; then
    apt-get -o DPkg::Lock::Timeout=600 update
    apt-get "${apt_opts[@]}" install docker.io
  fi
fi

mkdir -p "$cache"
if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker-up: starting dockerd (log: $log)" >&2
  # setsid detaches the daemon from this shell's session so it outlives the caller.
  setsid nohup dockerd >>"$log" 2>&1 </dev/null &
fi

for _ in $(seq "$wait_seconds"); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-up: the Docker daemon did not answer within ${wait_seconds}s; last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
