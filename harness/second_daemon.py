"""A second, throw-away Docker daemon beside the main one: the fresh daemon Bitbucket Pipelines gives each step.

It has its own data root, exec root (so its own containerd), pid file, unix socket and bridge, and no
iptables rules, so it never touches the main daemon's state or its `docker0`. With `tcp=True` it also
listens on `tcp://127.0.0.1:PORT`, as a Pipelines step's docker service does on localhost:2375. It
knows nothing of what the main daemon pushed before, which is the point: images are copied in with
`docker save | docker load`.

By default it is the system's dockerd. `engine=` runs another one (harness/engines.py: Debian 13's
Docker 26, unpacked beside the system's), with its own docker CLI and containerd first on PATH, and
`containerd_store=True` gives it the containerd image store (`containerd-snapshotter` in its config
file) instead of the classic graph drivers.

`bridge_forwarding=True` lets containers on its bridge reach one another (a Pipelines step reaching a registry
container, harness/pipelines_images.py): with br_netfilter on, bridged packets pass the host's FORWARD chain,
whose policy the main daemon sets to DROP. One rule of ours, `-i BRIDGE -o BRIDGE -j ACCEPT` at the top of
FORWARD, names only our bridge and is deleted at stop.

Plain Python (bench/) uses it as a context manager; pytest uses the module-scoped `second_daemon`
fixture in test/fixtures/docker.py:

    with SecondDaemon() as d:
        d.load("my-app:1")
        subprocess.run(["docker", "push", ...], env=d.env())
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from .engines import Engine
from .ports import free_port

DOCKERD = "dockerd"
# overlay2 works nested beside the main daemon on ext4 (measured here); vfs is the slow, always-works fallback.
STORAGE_DRIVERS = ("overlay2", "vfs")


class SecondDaemonError(RuntimeError):
    pass


class SecondDaemon:
    def __init__(self, storage_drivers: tuple[str, ...] = STORAGE_DRIVERS, start_timeout: float = 30.0,
                 stop_timeout: float = 15.0, data_parent: Path | None = None, tcp: bool = False,
                 engine: Engine | None = None, containerd_store: bool = False,
                 bridge_forwarding: bool = False) -> None:
        self.engine = engine
        self.bridge_forwarding = bridge_forwarding
        self.containerd_store = containerd_store
        # Loopback only, plain TCP as in Pipelines (no TLS): never on another interface.
        self.tcp_port: int | None = free_port() if tcp else None
        self.storage_drivers = storage_drivers
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        # Short path under /tmp: a unix socket path must stay under 108 bytes.
        self.workdir = Path(tempfile.mkdtemp(prefix="bbc-dockerd-", dir="/tmp"))
        # The data root (the image layers) may live on another disk, e.g. the one a benchmark measures.
        self.data_root = (Path(tempfile.mkdtemp(prefix="bbc-dockerd-data-", dir=data_parent)) if data_parent
                          else self.workdir / "data")
        self.bridge = "bbcd" + secrets.token_hex(4)  # interface names are at most 15 bytes
        self.storage_driver: str | None = None
        self.proc: subprocess.Popen | None = None
        self._bridge_created = False
        self._forward_rule_added = False

    # -- where it lives -------------------------------------------------------------------
    @property
    def socket(self) -> Path:
        return self.workdir / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def tcp_host(self) -> str:
        """`tcp://127.0.0.1:PORT`, the DOCKER_HOST of a client reaching this daemon over TCP."""
        if self.tcp_port is None:
            raise SecondDaemonError("this second daemon was started without tcp=True")
        return f"tcp://127.0.0.1:{self.tcp_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "dockerd.log"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise SecondDaemonError("the second daemon is not running")
        return self.proc.pid

    @property
    def cli(self) -> str:
        """The docker CLI of this daemon's engine (the system's for the system's dockerd)."""
        return str(self.engine.docker) if self.engine is not None else "docker"

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for a subprocess (docker CLI, the pipe) that talks to this daemon."""
        env = dict(os.environ if base is None else base)
        env["DOCKER_HOST"] = self.docker_host
        return env

    def cli_env(self) -> dict[str, str]:
        """The CLI's environment: another engine's CLI gets a config directory of its own, where it finds
        its buildx plugin (and keeps its logins)."""
        env = dict(os.environ)
        if self.engine is not None:
            config = self.workdir / "cli-config"
            plugins = config / "cli-plugins"
            if not plugins.exists():
                plugins.mkdir(parents=True)
                (plugins / "docker-buildx").symlink_to(self.engine.buildx)
            env["DOCKER_CONFIG"] = str(config)
        return env

    def version(self) -> tuple[str, str]:
        """(server version, API version) as the daemon reports them."""
        r = self.docker("version", "--format", "{{.Server.Version}} {{.Server.APIVersion}}", timeout=30)
        server, api = r.stdout.split()
        return server, api

    def log(self, tail: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> "SecondDaemon":
        if self.engine is None and shutil.which(DOCKERD) is None:
            raise SecondDaemonError("dockerd is not installed: apt-get install docker.io")
        try:
            _run(["ip", "link", "add", self.bridge, "type", "bridge"])
            self._bridge_created = True
            _run(["ip", "link", "set", self.bridge, "up"])
            if self.bridge_forwarding:
                _run(["iptables", "-I", "FORWARD", "1", *self._forward_rule])
                self._forward_rule_added = True
            failures = []
            # The containerd store's snapshotter is chosen by dockerd itself (overlayfs here).
            for driver in (None,) if self.containerd_store else self.storage_drivers:
                if self._start_with(driver):
                    self.storage_driver = driver or "overlayfs (containerd snapshotter)"
                    return self
                failures.append(f"{driver}: {self.log(1500)}")
                self._stop_process()
                self._remove_state()
            raise SecondDaemonError("the second dockerd did not start with any storage driver:\n" + "\n".join(failures))
        except BaseException:
            self.stop()
            raise

    @property
    def _forward_rule(self) -> list[str]:
        return ["-i", self.bridge, "-o", self.bridge, "-j", "ACCEPT"]

    def _start_with(self, driver: str | None) -> bool:
        data, exec_root = self.data_root, self.workdir / "exec"
        data.mkdir(parents=True, exist_ok=True)
        exec_root.mkdir(exist_ok=True)
        config = self.workdir / "daemon.json"
        config.write_text(json.dumps({"features": {"containerd-snapshotter": True}} if self.containerd_store else {}))
        log = open(self.log_path, "ab")
        listen = ["-H", self.tcp_host] if self.tcp_port is not None else []
        storage = ["--storage-driver", driver] if driver else []
        env = dict(os.environ)
        if self.engine is not None:  # its containerd and shims first on PATH; runc stays the system's
            env["PATH"] = self.engine.path_prefix + os.pathsep + env.get("PATH", "")
        # --bridge names our own bridge; never --bridge=none, which deletes the main daemon's docker0.
        self.proc = subprocess.Popen(
            [str(self.engine.dockerd) if self.engine is not None else DOCKERD, "--config-file", str(config),
             "--data-root", str(data), "--exec-root", str(exec_root),
             "--pidfile", str(self.workdir / "docker.pid"), "-H", self.docker_host, *listen,
             "--iptables=false", "--ip-masq=false", f"--bridge={self.bridge}", *storage],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env,
        )
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            if self.socket.exists():
                r = self.docker("info", "--format", "{{.Driver}} {{json .DriverStatus}}", timeout=10, check=False)
                if r.returncode == 0:
                    found, _, status = r.stdout.strip().partition(" ")
                    if self.containerd_store:
                        return "io.containerd.snapshotter" in status
                    return found == driver
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        """Stop by PID (SIGTERM, then SIGKILL), unmount what it left, delete its bridge and directories."""
        self._stop_process()
        if self._forward_rule_added:
            subprocess.run(["iptables", "-D", "FORWARD", *self._forward_rule], capture_output=True, timeout=30)
            self._forward_rule_added = False
        if self._bridge_created:
            subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, timeout=30)
            self._bridge_created = False
        self._remove_state()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _stop_process(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        # A killed dockerd (here or by a test) leaves the containerd it started (its pid file is in our exec root).
        _kill_pidfile(self.workdir / "exec" / "containerd" / "containerd.pid", str(self.workdir))

    def _remove_state(self) -> None:
        outside = [] if self.data_root.is_relative_to(self.workdir) else [self.data_root]
        for root in (self.workdir, *outside):
            for mount_point in _mounts_under(root):
                subprocess.run(["umount", "-l", mount_point], capture_output=True, timeout=30)
        for path in (self.data_root, self.workdir / "exec"):
            shutil.rmtree(path, ignore_errors=True)

    def __enter__(self) -> "SecondDaemon":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- using it ---------------------------------------------------------------------------
    def docker(self, *args: str, timeout: float = 300, check: bool = True,
               input: bytes | str | None = None) -> subprocess.CompletedProcess:
        """Run the docker CLI against this daemon."""
        r = subprocess.run([self.cli, "-H", self.docker_host, *args], capture_output=True, timeout=timeout,
                           text=not isinstance(input, bytes), input=input, env=self.cli_env())
        if check and r.returncode != 0:
            raise SecondDaemonError(f"docker {' '.join(args)} on the second daemon failed: {r.stderr}")
        return r

    def load(self, *refs: str, timeout: float = 600, source: "SecondDaemon | None" = None) -> None:
        """Copy images from the main daemon (or `source`): `docker save REFS | docker -H <this> load`, streamed.
        Between two containerd-store daemons the save keeps each layer as stored, so every digest stays."""
        saver = ["docker", "save", *refs] if source is None else [source.cli, "-H", source.docker_host, "save", *refs]
        save = subprocess.Popen(saver, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=None if source is None else source.cli_env())
        try:
            load = subprocess.run([self.cli, "-H", self.docker_host, "load", "-q"], stdin=save.stdout,
                                  capture_output=True, text=True, timeout=timeout, env=self.cli_env())
        finally:
            assert save.stdout is not None
            save.stdout.close()
            save_err = save.stderr.read().decode(errors="replace") if save.stderr else ""
            save.wait(timeout)
        if save.returncode != 0 or load.returncode != 0:
            raise SecondDaemonError(f"could not copy {refs} into the second daemon: {save_err} {load.stderr}")


def _run(cmd: list[str]) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SecondDaemonError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")


def _kill_pidfile(path: Path, owner_marker: str) -> None:
    """SIGKILL the process named in `path`, only if its command line names our directory (no stale PIDs)."""
    try:
        pid = int(path.read_text().strip())
        if owner_marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def _mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)
