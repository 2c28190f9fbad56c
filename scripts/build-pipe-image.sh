#!/usr/bin/env bash
# Build the pipe image offline, as `make image` does: a Debian 12 base made from Debian's
# packages (mmdebstrap + docker import) and Python dependencies installed from wheels built
# on this host. Containers here cannot reach PyPI through the machine's TLS interception, and
# there is no Docker Hub; the published image uses the Dockerfile's default official base.
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-bbc-packages-push-container-image:dev}
BASE=${BASE:-bbc-pipe-base:bookworm}
PYTHON=${PYTHON:-python3}

bash scripts/build-debian-base.sh "$BASE" python3,python3-venv,ca-certificates

echo "== building wheels for requirements.txt on the host"
rm -rf build/wheels && mkdir -p build/wheels
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps -r requirements.txt -w build/wheels

echo "== building $IMAGE"
docker build --quiet \
  --build-arg BASE_IMAGE="$BASE" \
  --build-arg PIP_OPTIONS="--no-index --find-links /tmp/pipe-requirements" \
  --build-arg PIPE_BYTECODE="${PIPE_BYTECODE:-1}" \
  -t "$IMAGE" . >/dev/null
docker image inspect "$IMAGE" --format "$IMAGE {{.Id}} {{.Size}} bytes"
