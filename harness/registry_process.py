"""Start the embedded registry as a real process on loopback, for tests and benchmarks."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from .accounts import TOKENS
from .paths import REPO_ROOT


@dataclass
class RegistryProcess:
    root: Path
    config: dict
    port: int = 0
    proc: subprocess.Popen | None = None
    extra_args: list[str] = field(default_factory=list)  # e.g. ["--debug"]
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_path = self.root.parent / f"{self.root.name}.log"
        self.config_path = self.root.parent / f"{self.root.name}.yml"
        self.config_path.write_text(yaml.safe_dump(self.config))

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        scheme = "https" if "--tls-cert" in self.extra_args else "http"
        return f"{scheme}://{self.host}"

    def start(self, timeout: float = 20.0) -> "RegistryProcess":
        ready = self.root.parent / f"{self.root.name}.ready"
        ready.unlink(missing_ok=True)
        listen = f"127.0.0.1:{self.port}"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "registry", "serve", "--listen", listen, "--root", str(self.root),
             "--config", str(self.config_path), "--ready-file", str(ready), *self.extra_args],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"registry exited with {self.proc.returncode}: {self.log()}")
            if ready.exists() and ready.read_text().strip():
                self.port = int(ready.read_text().strip().rsplit(":", 1)[1])
                return self
            time.sleep(0.05)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"registry did not start within {timeout}s: {self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        os.kill(self.proc.pid, sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def restart(self) -> "RegistryProcess":
        self.stop()
        return self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- convenience for tests: the management API and bearer tokens --------------------
    def api(self, method: str, path: str, user: str = "boss", **kwargs) -> requests.Response:
        return requests.request(method, f"{self.url}/api{path}", auth=(user, TOKENS[user]), timeout=30, **kwargs)

    def pipeline_credentials(self, repository: str, ttl: int = 3600, workspace: str = "acme") -> tuple[str, str]:
        """Mint pipeline credentials with the real command, as a user would: (username, token)."""
        r = subprocess.run(
            [sys.executable, "-m", "registry", "pipeline-credentials", "--root", str(self.root),
             "--workspace", workspace, "--repository", repository, "--ttl", str(ttl)],
            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
        )
        assert r.returncode == 0, r.stderr
        values = dict(line.split("=", 1) for line in r.stdout.splitlines())
        assert set(values) == {"BITBUCKET_PACKAGES_USERNAME", "BITBUCKET_PACKAGES_TOKEN"}, r.stdout
        return values["BITBUCKET_PACKAGES_USERNAME"], values["BITBUCKET_PACKAGES_TOKEN"]

    def token(self, user: str, scope: str) -> str:
        r = requests.get(f"{self.url}/token", params={"scope": scope, "service": "crg.apkg.io"},
                         auth=(user, TOKENS[user]), timeout=30)
        r.raise_for_status()
        return r.json()["token"]
