"""The emulator (`python -m registry serve`) as a container of a second daemon, over TLS: crg.apkg.io for pipelines
that bitbucket-pipeline-runner runs in that daemon (harness/pipelines_images.py builds its image).

It listens on its container's address on the daemon's bridge, which steps, services and the pipe inside the
docker service reach (`SecondDaemon(bridge_forwarding=True)`), never on loopback, which is each container's
own. Its certificate names that address, known once the container runs: the container waits (bounded) for the
certificate to appear in its directory before it serves, and `start()` takes a function that writes it.

    emulator = EmulatorContainer(daemon, image, directory, config).start(make_certificate)
    emulator.host                  # "172.20.0.2:5000"
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import yaml

from .second_daemon import SecondDaemon

PORT = 5000
MOUNT = "/srv/emulator"
CERT, KEY, READY = "server.crt", "server.key", "ready"
# The container's command: wait up to 60 s for the certificate, then serve on every interface of the container.
WAIT_AND_SERVE = (f"i=0; while [ ! -s {MOUNT}/{KEY} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; "
                  f"exec /opt/emulator/bin/python -m registry serve --listen 0.0.0.0:{PORT} --root {MOUNT}/root "
                  f"--config {MOUNT}/config.yml --tls-cert {MOUNT}/{CERT} --tls-key {MOUNT}/{KEY} "
                  f"--ready-file {MOUNT}/{READY}")


class EmulatorError(RuntimeError):
    pass


class EmulatorContainer:
    def __init__(self, daemon: SecondDaemon, image: str, directory: Path, config: dict) -> None:
        self.daemon = daemon
        self.image = image
        self.directory = directory
        self.config = config
        self.name = f"bbc-emulator-{daemon.bridge}"
        self.address: str | None = None

    @property
    def host(self) -> str:
        if self.address is None:
            raise EmulatorError("the emulator container is not running")
        return f"{self.address}:{PORT}"

    @property
    def certificate(self) -> Path:
        return self.directory / CERT

    def start(self, write_certificate: Callable[[str, Path, Path], None], timeout: float = 60.0) -> "EmulatorContainer":
        """Run the container, call `write_certificate(address, cert_path, key_path)`, wait until it serves."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "config.yml").write_text(yaml.safe_dump(self.config))
        self.daemon.docker("run", "-d", "--name", self.name, "-v", f"{self.directory}:{MOUNT}", "--entrypoint", "sh",
                           self.image, "-c", WAIT_AND_SERVE, timeout=60)
        self.address = self.daemon.docker(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.name,
            timeout=30).stdout.strip()
        if not self.address:
            raise EmulatorError(f"the emulator container has no address on the bridge: {self.logs()}")
        # The key last: the container starts serving once it is there.
        write_certificate(self.address, self.certificate, self.directory / f"{KEY}.part")
        (self.directory / f"{KEY}.part").rename(self.directory / KEY)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self.directory / READY).exists() and (self.directory / READY).read_text().strip():
                return self
            state = self.daemon.docker("inspect", "-f", "{{.State.Running}}", self.name, timeout=30).stdout.strip()
            if state != "true":
                raise EmulatorError(f"the emulator container stopped: {self.logs()}")
            time.sleep(0.1)
        raise EmulatorError(f"the emulator container did not serve within {timeout} s: {self.logs()}")

    def pipeline_credentials(self, workspace: str, repository: str, ttl: int = 7200) -> dict[str, str]:
        """BITBUCKET_PACKAGES_USERNAME and _TOKEN of a step of `repository`, minted as Pipelines mints them (for a
        step; here for every run of a test session, so they last `ttl` seconds)."""
        r = self.daemon.docker("exec", self.name, "/opt/emulator/bin/python", "-m", "registry", "pipeline-credentials",
                               "--root", f"{MOUNT}/root", "--workspace", workspace, "--repository", repository,
                               "--ttl", str(ttl), timeout=60)
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def logs(self) -> str:
        r = self.daemon.docker("logs", "--tail", "50", self.name, timeout=30, check=False)
        return (r.stdout + r.stderr)[-4000:]

    def stop(self) -> None:
        self.daemon.docker("rm", "-f", "-v", self.name, timeout=60, check=False)
