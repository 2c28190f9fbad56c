"""The reference registry: Debian's `docker-registry` (distribution 2.8) on 127.0.0.1, for tests and bench/.

With no auth, or with htpasswd (bcrypt) basic auth; over plain HTTP, or over TLS with a certificate the
caller makes (`tls=(ca, cert, key)`: the CA is what clients trust). Storage, config and log live in
`workdir`; the log (access log included unless `quiet`) is readable with `log()`.

    with DistributionRegistry(tmp_path / "ref", users={"alice": "s3cret"}) as reg:
        docker login reg.host -u alice ...; skopeo copy ... docker://{reg.host}/acme/app:1
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import bcrypt
import requests
import yaml

from .ports import free_port

BINARY = "/usr/bin/docker-registry"


def version() -> str:
    try:
        out = subprocess.run([BINARY, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return out.strip()


def htpasswd_line(user: str, password: str) -> str:
    """One htpasswd line with a bcrypt hash (the only scheme distribution accepts); cost 5 keeps logins fast."""
    return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()}"


class DistributionRegistry:
    def __init__(self, workdir: Path, users: dict[str, str] | None = None, quiet: bool = False,
                 extra_config: dict | None = None, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.workdir = workdir
        self.root = workdir / "root"
        self.users = dict(users or {})
        self.quiet = quiet
        self.extra_config = extra_config or {}
        self.tls = tls
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "registry.log"

    def config(self) -> dict:
        config: dict = {
            "version": 0.1,
            "log": ({"level": "warn", "accesslog": {"disabled": True}} if self.quiet
                    else {"level": "info", "accesslog": {"disabled": False}}),
            "storage": {"filesystem": {"rootdirectory": str(self.root)}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if self.tls:
            _, cert, key = self.tls
            config["http"]["tls"] = {"certificate": str(cert), "key": str(key)}
        if self.users:
            htpasswd = self.workdir / "htpasswd"
            htpasswd.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "reference-registry", "path": str(htpasswd)}}
        config.update(self.extra_config)
        return config

    def start(self, timeout: float = 20.0) -> "DistributionRegistry":
        if not Path(BINARY).exists():
            raise RuntimeError(f"{BINARY} is missing: apt-get install docker-registry")
        self.root.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "config.yml"
        config_path.write_text(yaml.safe_dump(self.config()))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BINARY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        ready = (200, 401) if self.users else (200,)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited with {self.proc.returncode}: {self.log()}")
            try:
                verify = str(self.tls[0]) if self.tls else True
                if requests.get(f"{self.url}/v2/", timeout=2, verify=verify).status_code in ready:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"docker-registry did not answer within {timeout}s: {self.log()}")

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> "DistributionRegistry":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log(self, tail: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    def upload_dirs(self, repository: str) -> list[Path]:
        """The upload sessions distribution holds on disk for `repository` (each has a `data` file)."""
        uploads = self.root / "docker/registry/v2/repositories" / repository / "_uploads"
        return sorted(p for p in uploads.iterdir() if p.is_dir()) if uploads.exists() else []

    def discard(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
