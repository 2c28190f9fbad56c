"""The daemons the engine phase pushes from (the default one, 20.10; Debian 13's Docker 26 as second daemons with
the classic or the containerd store) and the images it pushes (BENCHMARKS.md, "Push engines"). Files are written in
1 MiB pieces: memory stays flat whatever the size."""
from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from harness import engines
from harness.layered_images import _file_slices  # the /usr slices the test images use (90-100 % of a size)
from harness.second_daemon import SecondDaemon

from .. import measure

MAIN = engines.MAIN
PIECE = 1024**2
BUILD_TIMEOUT = 900.0
DAEMON_START_TIMEOUT = 60.0  # generous bounds: one start and stop per fresh-daemon measurement
DAEMON_STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class EngineImage:
    kind: str
    previous: str  # shares every layer but the top one with `current`
    current: str
    layers: int
    layer_bytes: int

    @property
    def image_bytes(self) -> int:
        return self.layers * self.layer_bytes


@dataclass
class Daemon:
    """Where a push starts: a daemon's socket (None: the default daemon), its docker CLI, and the pids whose
    CPU-seconds each measurement records (on the containerd store, containerd does the image work)."""
    label: str  # harness/engines.py's ENGINE_KINDS
    pid: int | None
    host: str | None = None
    cli: str = "docker"
    containerd_pid: int | None = None
    second: SecondDaemon | None = None  # None: the default daemon, never stopped here

    def others(self, registry_pid: int | None = None) -> dict[str, int | None]:
        return {"dockerd": self.pid, "containerd": self.containerd_pid, "registry": registry_pid}

    def stop(self) -> None:
        if self.second is not None:
            self.second.stop()  # by its pid; removes its directories (its images) and bridge


def default() -> Daemon:
    return Daemon(MAIN, measure.daemon_pid())


def start(label: str, data_parent: Path) -> Daemon:
    """A second daemon of `label`'s kind (the system's dockerd for 20.10), its layers on `data_parent`'s disk."""
    second = SecondDaemon(start_timeout=DAEMON_START_TIMEOUT, stop_timeout=DAEMON_STOP_TIMEOUT,
                          data_parent=data_parent, engine=None if label == MAIN else engines.debian13(),
                          containerd_store=label == engines.CONTAINERD_26)
    second.start()  # stops what it started when it fails
    containerd = measure.daemon_pid(str(second.workdir / "exec" / "containerd" / "containerd.pid"))
    return Daemon(label, second.pid, second.docker_host, second.cli, containerd, second)


@contextmanager
def usr_tar() -> Iterator[BinaryIO]:
    """One tar stream of /usr: real files, as an image has them, in consecutive cuts (`Cut`)."""
    tar = subprocess.Popen(["tar", "-cf", "-", "--one-file-system", "-C", "/", "usr"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    assert tar.stdout is not None
    try:
        yield tar.stdout
    finally:
        tar.stdout.close()
        tar.kill()  # it is cut off on purpose once enough is read
        tar.wait(30)


class Cut:
    """The next `size` bytes of a stream, read in pieces (by tarfile, or copied to a file)."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self.stream, self.left = stream, size

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.stream.read(n) if n else b""
        if n and not data:
            raise RuntimeError("a tar of /usr is smaller than the image asked for")
        self.left -= len(data)
        return data


def _write_usr(files: list[Path], size: int) -> None:
    with usr_tar() as usr:
        for path in files:
            with open(path, "wb") as out:
                shutil.copyfileobj(Cut(usr, size), out, PIECE)


def _write_random(files: list[Path], size: int) -> None:
    for path in files:
        with open(path, "wb") as out:
            for offset in range(0, size, PIECE):
                out.write(os.urandom(min(PIECE, size - offset)))


def write_context(kind: str, context: Path, layers: int, layer_bytes: int, slices: bool) -> None:
    """A build context of `layer0` .. `layer<layers-1>`, one directory per layer (the last the top). Real files:
    `slices`, the slices of /usr harness/layered_images.py picks, as a user's build has them (the 26 daemons); else
    cuts of one tar stream of /usr, one file a layer (20.10, and the archive phase). Random bytes: one file a layer."""
    dirs = [context / f"layer{i}" for i in range(layers)]
    for directory in dirs:
        directory.mkdir(parents=True)
    if kind == "usr" and slices:
        for i, directory in enumerate(dirs):
            for src in _file_slices(layer_bytes, i):
                dst = directory / src.relative_to("/")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    else:
        (_write_usr if kind == "usr" else _write_random)([d / f"{kind}-{d.name}.bin" for d in dirs], layer_bytes)


def build(daemon: Daemon, kind: str, context: Path, layers: int, layer_bytes: int) -> EngineImage:
    """`bench-engine-<kind>:previous` (every layer but the top) and `:current` (FROM it, the top) in `daemon`, from
    write_context's directories: `docker build` in the default daemon, the daemon's own BuildKit in a second one."""
    image = EngineImage(kind, f"bench-engine-{kind}:previous", f"bench-engine-{kind}:current", layers, layer_bytes)
    steps = ((image.previous, ["FROM scratch", *(f"COPY layer{i} /" for i in range(layers - 1))]),
             (image.current, [f"FROM {image.previous}", f"COPY layer{layers - 1} /"]))
    for ref, lines in steps:
        dockerfile = context / f"Dockerfile.{ref.partition(':')[2]}"
        dockerfile.write_text("\n".join(lines) + "\n")
        args = ("-q", "-f", str(dockerfile), "-t", ref, str(context))
        if daemon.second is not None:
            daemon.second.docker("buildx", "build", "--load", *args, timeout=BUILD_TIMEOUT)
            continue
        measure.step(["docker", "build", *args], BUILD_TIMEOUT)
    return image
