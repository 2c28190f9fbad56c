#!/bin/sh
# As the docker:dind image starts dockerd with DOCKER_TLS_CERTDIR="" (what the runner sets): the unix socket
# and plain TCP on 2375, which steps reach as DOCKER_HOST=tcp://localhost:2375 and pipes as
# tcp://host.docker.internal:2375. The runner passes `--tls=false`: plain TCP, as Pipelines' daemon serves it.
set -e
exec dockerd --host=unix:///var/run/docker.sock --host=tcp://0.0.0.0:2375 "$@"
