#!/usr/bin/env bash
# `make demo`: the main job end to end on one machine. Starts the embedded registry on
# loopback, builds a tiny image offline, pushes it with the pipe, pulls it back and checks
# that the digest pulled is the digest pushed. Everything it makes is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

docker info >/dev/null 2>&1 || { echo "demo: no Docker daemon is reachable; start dockerd (or Docker Desktop) and retry" >&2; exit 1; }

work=$(mktemp -d)
registry_pid=""
image="demo-app:1.0"
cleanup() {
  [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null && wait "$registry_pid" 2>/dev/null || true
  docker rmi -f "$image" $(docker images --format '{{.Repository}}:{{.Tag}}' | grep "/demo/demo-app:" || true) >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

token=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
admin_token=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(16))')
cat > "$work/config.yml" <<YAML
workspaces:
  demo:
    repositories:
      web: {project: DEMO}
    packages:
      demo-app: web
    members:
      pipelines: {token: $token, roles: {web: write}}
      admin: {token: $admin_token, roles: {web: admin}}
YAML

echo "== starting the embedded registry (root $work/root)"
"$PYTHON" -m registry serve --listen 127.0.0.1:0 --root "$work/root" --config "$work/config.yml" \
  --ready-file "$work/ready" >"$work/registry.log" 2>&1 &
registry_pid=$!
for _ in $(seq 1 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
[ -s "$work/ready" ] || { echo "demo: the registry did not start:" >&2; cat "$work/registry.log" >&2; exit 1; }
registry=$(cat "$work/ready")
echo "   listening on http://$registry"

echo "== building $image offline (FROM scratch, files from a build context)"
mkdir -p "$work/context"
echo "hello from the pipe demo, $(date -u +%FT%TZ)" > "$work/context/hello.txt"
head -c 1048576 /dev/urandom > "$work/context/data.bin"
printf 'FROM scratch\nCOPY hello.txt data.bin /\n' > "$work/context/Dockerfile"
docker build --quiet -t "$image" "$work/context" >/dev/null 2>"$work/build.log" \
  || { echo "demo: docker build failed:" >&2; cat "$work/build.log" >&2; exit 1; }

echo "== pushing with the pipe: IMAGE_NAME=$image TAGS='1.0 latest' REGISTRY=$registry"
IMAGE_NAME="$image" TAGS="1.0 latest" WORKSPACE=demo REGISTRY="$registry" \
BITBUCKET_PACKAGES_USERNAME=pipelines BITBUCKET_PACKAGES_TOKEN="$token" \
BITBUCKET_PIPE_SHARED_STORAGE_DIR="$work/shared" \
  "$PYTHON" -m pipe

pushed=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$work/shared/bbc-packages-push-container-image.json")

echo "== pulling it back with docker pull"
export DOCKER_CONFIG="$work/docker-config"
mkdir -p "$DOCKER_CONFIG"
printf '%s' "$token" | docker login "$registry" -u pipelines --password-stdin >/dev/null 2>&1
docker rmi -f "$registry/demo/demo-app:1.0" >/dev/null 2>&1 || true
docker pull --quiet "$registry/demo/demo-app:1.0" >/dev/null
pulled=$(docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$registry/demo/demo-app:1.0" \
  | grep "^$registry/demo/demo-app@" | head -1 | cut -d@ -f2)
echo "   pushed digest: $pushed"
echo "   pulled digest: $pulled"
if [ "$pushed" != "$pulled" ]; then
  echo "demo: FAILED, the pulled digest differs from the pushed one" >&2
  exit 1
fi
echo "== demo passed: the image pulled back is the image pushed ($pulled)"

if [ -n "${DEMO_KEEP:-}" ]; then
  # A throwaway registry on loopback: its admin token is printed so that the pages can be tried.
  echo "== the registry keeps running: open http://$registry/ui/ and log in as admin with token $admin_token"
  echo "   (press Ctrl-C to stop it; everything the demo made is then removed)"
  wait "$registry_pid"
fi
