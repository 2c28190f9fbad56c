# The pipe image. The default base is the official slim Python image; `make image` builds the
# same Dockerfile offline on a base made from Debian packages, with wheels from the host.
ARG BASE_IMAGE=python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG PIP_OPTIONS=""
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GIT_PYTHON_REFRESH=quiet \
    PATH=/opt/pipe-venv/bin:$PATH

# Dependencies first, so code changes do not reinstall them. build/wheel[s] matches nothing
# in a plain checkout, and only the wheels built by `make image` otherwise.
COPY requirements.txt build/wheel[s] /tmp/pipe-requirements/
RUN python3 -m venv /opt/pipe-venv \
 && /opt/pipe-venv/bin/pip install --no-cache-dir --disable-pip-version-check ${PIP_OPTIONS} \
      -r /tmp/pipe-requirements/requirements.txt \
 && rm -rf /tmp/pipe-requirements

COPY pipe.yml /pipe.yml
COPY pipe /opt/pipe/pipe
# Pipelines runs a pipe with the clone directory as its working directory: the package is found by path.
ENV PYTHONPATH=/opt/pipe
ENTRYPOINT ["python3", "-m", "pipe"]
