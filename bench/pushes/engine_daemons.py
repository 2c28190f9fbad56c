"""The daemons the engine phase pushes from: the default one (Docker 20.10, classic image store) and Debian 13's
Docker 26 as second daemons (harness/engines.py), one with the classic image store, one with the containerd
image store; and the images of the Docker 26 cases.

Those images are built inside each 26 daemon by its own CLI with BuildKit (`buildx build --load`), from one
build context per kind, as a user's `docker build` makes them: on the containerd store each layer is stored
gzipped by BuildKit, which is what that store's `docker push` sends as it is. The classic 26 daemon builds the
same way (not a `docker load` from the 20.10 daemon), so both stores hold the same files. Per kind, a `base`
of layers-1 `COPY` layers (FROM scratch: no network), then `current` FROM that base with one more `COPY` layer
of the same size: layers x layer_bytes, the same shape as the 20.10 images. The registry gets `base` before
the fresh-daemon case (all but the top layer); built FROM it, `current` shares its stored blobs.
- `usr`: real files, the slices of /usr that harness/layered_images.py picks, one slice per layer;
- `random`: one file of random bytes per layer.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness import engines
from harness.layered_images import _file_slices  # the /usr slices the test images use (90-100 % of a size)
from harness.second_daemon import SecondDaemon

from .. import measure
from .engine_images import BUILD_TIMEOUT, EngineImage, _write_random

MAIN = engines.MAIN
# Generous bounds on a second daemon's start and stop (one per fresh-daemon measurement).
DAEMON_START_TIMEOUT = 60.0
DAEMON_STOP_TIMEOUT = 30.0


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
    """A second daemon of `label`'s kind, started (the system's dockerd for 20.10), its layers on `data_parent`'s
    disk; the caller stops it."""
    engine = None if label == MAIN else engines.debian13()
    second = SecondDaemon(start_timeout=DAEMON_START_TIMEOUT, stop_timeout=DAEMON_STOP_TIMEOUT,
                          data_parent=data_parent, engine=engine, containerd_store=label == engines.CONTAINERD_26)
    second.start()  # stops what it started when it fails
    containerd = measure.daemon_pid(str(second.workdir / "exec" / "containerd" / "containerd.pid"))
    return Daemon(label, second.pid, second.docker_host, second.cli, containerd, second)


def copy(image: str, source: Daemon, target: Daemon, timeout: float) -> None:
    """`docker save | docker load`, each side with its own CLI. A containerd store's save holds the layers as
    stored (compressed), so the loaded image keeps its ID and blob digests."""
    def cli(d: Daemon) -> list[str]:
        return [d.cli, *(["-H", d.host] if d.host else [])]

    save = subprocess.Popen([*cli(source), "save", image], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert save.stdout is not None and save.stderr is not None
    try:
        load = subprocess.run([*cli(target), "load", "-q"], stdin=save.stdout, capture_output=True, text=True,
                              timeout=timeout)
    finally:
        save.stdout.close()
        save_err = save.stderr.read().decode(errors="replace")
        save.wait(timeout)
    if save.returncode or load.returncode:
        raise RuntimeError(f"copying {image} from {source.label} to {target.label}: {save_err} {load.stderr}")


def write_context(kind: str, context: Path, layers: int, layer_bytes: int) -> None:
    """`layer0` .. `layer<layers-1>`, one directory per layer (the last one the top layer)."""
    dirs = [context / f"layer{i}" for i in range(layers)]
    if kind == "usr":
        for i, directory in enumerate(dirs):
            for src in _file_slices(layer_bytes, i):
                dst = directory / src.relative_to("/")
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
    else:
        for d in dirs:
            d.mkdir(parents=True)
        _write_random([d / f"random-{d.name}.bin" for d in dirs], layer_bytes)


def build(daemon: Daemon, kind: str, context: Path, layers: int, layer_bytes: int) -> EngineImage:
    """`bench-engine26-<kind>:base` and `:current` in a second daemon, from write_context's directories."""
    assert daemon.second is not None
    image = EngineImage(kind, f"bench-engine26-{kind}:base", f"bench-engine26-{kind}:current", layers, layer_bytes)
    steps = ((image.previous, ["FROM scratch", *(f"COPY layer{i} /" for i in range(layers - 1))]),
             (image.current, [f"FROM {image.previous}", f"COPY layer{layers - 1} /"]))
    for ref, lines in steps:
        dockerfile = context / f"Dockerfile.{ref.partition(':')[2]}"
        dockerfile.write_text("\n".join(lines) + "\n")
        daemon.second.docker("buildx", "build", "--load", "-q", "-f", str(dockerfile), "-t", ref, str(context),
                             timeout=BUILD_TIMEOUT)
    return image
