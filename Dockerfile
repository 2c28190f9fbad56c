# The pipe image. The default base is the official slim Python image; `make image` builds the
# same Dockerfile offline on a base made from Debian packages, with wheels from the host.
# Two stages: pip runs in the first; the second gets only the installed files (BENCHMARKS.md,
# "The pipe image").
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_OPTIONS=""
# 1: ship compiled bytecode (measured: the start is faster, see BENCHMARKS.md); 0: sources only.
ARG PIPE_BYTECODE=1
# build/wheel[s] matches nothing in a plain checkout, and only the wheels built by `make image` otherwise.
COPY requirements.txt build/wheel[s] /tmp/pipe-requirements/
RUN python3 -m venv /tmp/build-venv \
 && /tmp/build-venv/bin/pip install --quiet --no-cache-dir --disable-pip-version-check --no-compile \
      --target /opt/pipe/lib ${PIP_OPTIONS} -r /tmp/pipe-requirements/requirements.txt \
 && rm -rf /opt/pipe/lib/bin \
 && if [ "$PIPE_BYTECODE" = 1 ]; then python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/pipe/lib; fi
COPY pipe /opt/pipe/pipe
RUN find /opt/pipe/pipe -name __pycache__ -prune -exec rm -rf {} + \
 && if [ "$PIPE_BYTECODE" = 1 ]; then python3 -m compileall -q --invalidation-mode unchecked-hash /opt/pipe/pipe; fi

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIT_PYTHON_REFRESH=quiet \
    PYTHONPATH=/opt/pipe:/opt/pipe/lib
# The official base carries pip, setuptools and wheel in its site-packages; the pipe runs none of them.
RUN rm -rf /usr/local/bin/pip* /usr/local/lib/python3*/site-packages/pip \
      /usr/local/lib/python3*/site-packages/pip-* /usr/local/lib/python3*/site-packages/setuptools* \
      /usr/local/lib/python3*/site-packages/pkg_resources /usr/local/lib/python3*/site-packages/_distutils_hack \
      /usr/local/lib/python3*/site-packages/distutils-precedence.pth /usr/local/lib/python3*/site-packages/wheel*
# Dependencies before the pipe's code, so a code change reuses their layer.
COPY --from=build /opt/pipe/lib /opt/pipe/lib
COPY --from=build /opt/pipe/pipe /opt/pipe/pipe
COPY pipe.yml /pipe.yml
# Pipelines runs a pipe with the clone directory as its working directory, and `-m` would put that
# directory first on sys.path: a clone's own `pipe/`, `pipe.py` (or `requests.py`) would run instead,
# with the registry token in its environment. -P (Python 3.11+) leaves it out; PYTHONPATH finds the pipe.
ENTRYPOINT ["python3", "-P", "-m", "pipe"]
