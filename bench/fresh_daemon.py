"""A fresh, throw-away second dockerd: the Pipelines case, where every step starts a new daemon.

Its own socket, data root, exec root, pidfile and bridge (made with `ip link`), no iptables, so it
never touches the daemon on the default socket. Small on purpose: test/second_daemon.py (branch
`infra`) does the same for the tests, and the two can be unified once both have landed.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

START_TIMEOUT = 60.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class FreshDaemon:
    def __init__(self, workdir: Path, index: int) -> None:
        self.workdir = workdir
        self.bridge = f"bbcbench{index}"
        self.subnet = f"10.213.{index % 250}.1/24"
        # Unix socket paths are limited to 108 bytes: the exec root (containerd's sockets) stays short.
        self.exec_root = Path(tempfile.mkdtemp(prefix="bd", dir="/run"))
        self.socket = self.exec_root / "docker.sock"
        self.data_root = workdir / "data"
        self.pidfile = self.exec_root / "docker.pid"
        self.log_path = workdir / "dockerd.log"
        self.proc: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        return {**(base if base is not None else os.environ), "DOCKER_HOST": self.host}

    def start(self) -> "FreshDaemon":
        self.workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)  # a leftover of a killed run
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", self.subnet, "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["dockerd", "--host", self.host, "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
             "--pidfile", str(self.pidfile), "--iptables=false", "--ip-masq=false", "--bridge", self.bridge,
             "--containerd-namespace", f"bench{self.bridge}", "--containerd-plugins-namespace", f"benchp{self.bridge}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"second dockerd exited with {self.proc.returncode}: {self.log()}")
            r = subprocess.run(["docker", "-H", self.host, "version", "--format", "{{.Server.Version}}"],
                               capture_output=True, text=True, timeout=20)
            if r.returncode == 0:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"second dockerd did not answer within {START_TIMEOUT:.0f}s: {self.log()}")

    def load_from(self, image: str, timeout: float = 600.0) -> None:
        """`docker save` on the default daemon piped into `docker load` here (streamed, never on disk)."""
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            load = subprocess.run(["docker", "-H", self.host, "load", "-q"], stdin=save.stdout, capture_output=True,
                                  text=True, timeout=timeout)
        finally:
            assert save.stdout is not None
            save.stdout.close()
            try:
                save.wait(30)
            except subprocess.TimeoutExpired:
                save.kill()
                save.wait(5)
        if save.returncode != 0 or load.returncode != 0:
            raise RuntimeError(f"docker save {image} | docker load failed: {load.stderr.strip()[-500:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # only the daemon this harness started, by its pid
                self.proc.wait(10)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)
        # overlay2 mounts under the data root go away with the daemon; anything left stays mounted, not deleted.
        subprocess.run(["umount", "-R", str(self.data_root)], capture_output=True, timeout=30)
        shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.exec_root, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-1500:] if self.log_path.exists() else ""
