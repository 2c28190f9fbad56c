# The registry emulator (python3 -m registry serve) as a container, on the pipe image's Debian base, with
# its dependencies from wheels built on the host (containers here cannot reach PyPI).
ARG BASE
FROM ${BASE}
COPY wheels/ /tmp/wheels/
RUN python3 -m venv /opt/emulator \
 && /opt/emulator/bin/pip install --quiet --no-cache-dir --disable-pip-version-check --no-index \
      --find-links /tmp/wheels /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels
COPY registry /opt/emulator/app/registry
WORKDIR /opt/emulator/app
ENTRYPOINT ["/opt/emulator/bin/python", "-m", "registry"]
