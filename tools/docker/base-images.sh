#!/usr/bin/env bash
# Build local stand-ins for goapp/Dockerfile's two base images from what is installed on this machine, because
# no image can be pulled here:
#   goapp-local/go:<host Go version>   builder: the host Go toolchain, a static busybox (shell and coreutils),
#                                      CA certificates, passwd/group; like the official golang image.
#   goapp-local/static:<revision>      runtime: CA certificates, passwd/group with nonroot 65532, /tmp 1777,
#                                      no shell; like distroless static nonroot.
# Both are made FROM scratch. An image that exists with the current recipe revision is kept, so a second run
# takes well under a second. Prints the build args to use on stdout:
#   GO_IMAGE=goapp-local/go:1.26.8
#   RUNTIME_IMAGE=goapp-local/static:1
# so callers can `eval "$(tools/docker/base-images.sh)"`. Everything else goes to stderr.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=SCRIPTDIR/../../versions.env
. "$root/versions.env"
cache="${GOAPP_CACHE:-$HOME/.cache/goapp}"
revision="${GOAPP_STANDIN_REVISION:?versions.env must set GOAPP_STANDIN_REVISION}"
label="org.goapp.standin-revision"
export DOCKER_BUILDKIT=0

"$root/tools/docker/up.sh"

goroot="$(go env GOROOT)"
goversion="$(go env GOVERSION)"
goversion="${goversion#go}"
go_tag="goapp-local/go:$goversion"
static_tag="goapp-local/static:$revision"

current() { # image tag has the current recipe revision
  [ "$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$1" 2>/dev/null)" = "$revision" ]
}

ensure_busybox() {
  if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
    echo "base-images: installing Debian's busybox-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends \
      install busybox-static >&2 ||
      { apt-get -o DPkg::Lock::Timeout=600 update >&2 &&
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 -y --no-install-recommends \
          install busybox-static >&2; }
  fi
}

# A fresh staging directory per image; passwd/group hold the same accounts as the public images.
stage() {
  local dir="$cache/standins/$1"
  rm -rf "$dir"
  mkdir -p "$dir/rootfs/etc/ssl/certs" "$dir/rootfs/tmp" "$dir/rootfs/home/nonroot"
  chmod 1777 "$dir/rootfs/tmp"
  chown 65532:65532 "$dir/rootfs/home/nonroot"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/rootfs/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$dir/rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' >"$dir/rootfs/etc/group"
  echo "$dir"
}

if current "$go_tag"; then
  echo "base-images: $go_tag is current" >&2
else
  ensure_busybox
  echo "base-images: building $go_tag from $goroot" >&2
  dir="$(stage go)"
  mkdir -p "$dir/rootfs/usr/local" "$dir/rootfs/bin" "$dir/rootfs/go/bin" "$dir/rootfs/root"
  # Hard links when the cache shares the file system with GOROOT: no 250 MB copy.
  cp -al "$goroot" "$dir/rootfs/usr/local/go" 2>/dev/null || cp -a "$goroot" "$dir/rootfs/usr/local/go"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    GOPATH=/go GOTOOLCHAIN=local SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /go
LABEL $label="$revision" org.opencontainers.image.description="Local stand-in for golang:$goversion"
DOCKERFILE
  docker build -q -t "$go_tag" "$dir" >&2
  rm -rf "$dir"
fi

if current "$static_tag"; then
  echo "base-images: $static_tag is current" >&2
else
  echo "base-images: building $static_tag" >&2
  dir="$(stage static)"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /
USER 65532:65532
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL $label="$revision" org.opencontainers.image.description="Local stand-in for a distroless static nonroot image"
DOCKERFILE
  docker build -q -t "$static_tag" "$dir" >&2
  rm -rf "$dir"
fi

echo "GO_IMAGE=$go_tag"
echo "RUNTIME_IMAGE=$static_tag"
