#!/usr/bin/env bash
# Build a Debian 12 base image from Debian's packages, offline from Docker Hub: mmdebstrap (minbase, no
# recommends, no apt lists, docs or man pages) piped into `docker import`. A no-op when IMAGE exists.
# Usage: build-debian-base.sh IMAGE PACKAGE[,PACKAGE...]   (scripts/build-pipe-image.sh, harness/pipelines_images.py)
set -euo pipefail
IMAGE=${1:?usage: build-debian-base.sh IMAGE PACKAGES}
PACKAGES=${2:?usage: build-debian-base.sh IMAGE PACKAGES}

docker image inspect "$IMAGE" >/dev/null 2>&1 && exit 0
echo "== building base image $IMAGE from Debian packages (mmdebstrap, once): $PACKAGES"
command -v mmdebstrap >/dev/null || { echo "mmdebstrap is missing: apt-get install -y mmdebstrap" >&2; exit 1; }
tarball=$(mktemp --suffix=.tar)
trap 'rm -f "$tarball"' EXIT
mmdebstrap --quiet --variant=minbase --include="$PACKAGES" \
  --aptopt='APT::Install-Recommends "false"' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*' \
  bookworm "$tarball"
docker import --change 'ENV LANG=C.UTF-8' "$tarball" "$IMAGE" >/dev/null
