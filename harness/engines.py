"""The Docker engines the tests and the benchmark run the pipe against, as Pipelines users meet them.

- `20.10`: Debian 12's docker.io, the main daemon (`.ci/run` starts it), the classic image store;
- `26-classic` and `26-containerd`: Debian 13's docker.io 26.x (the closest Debian has to the 25.0 of
  Pipelines' docker service), unpacked beside the system's by `harness/install-engines.sh`, started as a
  second daemon (harness/second_daemon.py) with the classic store or the containerd image store (the
  default of fresh Docker 29 installs, and what `docker buildx build --platform a,b --load` needs).

`Engine` says where one unpacked engine's binaries are; `ENGINE_KINDS` names the three daemons.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ENGINES_DIR = Path(os.environ.get("BBC_ENGINES_DIR") or Path.home() / ".cache" / "bbc-engines")
INSTALL = "bash harness/install-engines.sh"

MAIN = "20.10"
CLASSIC_26 = "26-classic"
CONTAINERD_26 = "26-containerd"
ENGINE_KINDS = (MAIN, CLASSIC_26, CONTAINERD_26)


class EngineMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class Engine:
    """One unpacked engine: dockerd, its docker CLI, containerd and its shims, buildx, oras."""

    root: Path

    @property
    def dockerd(self) -> Path:
        return self.root / "usr" / "sbin" / "dockerd"

    @property
    def docker(self) -> Path:
        return self.root / "usr" / "bin" / "docker"

    @property
    def buildx(self) -> Path:
        return self.root / "usr" / "libexec" / "docker" / "cli-plugins" / "docker-buildx"

    @property
    def oras(self) -> Path:
        return self.root / "usr" / "bin" / "oras"

    @property
    def path_prefix(self) -> str:
        """What goes first on dockerd's PATH: its containerd and shims (usr/sbin holds no runc: the system's runs)."""
        return os.pathsep.join(str(self.root / d) for d in ("usr/bin", "usr/sbin"))


def debian13(directory: Path = ENGINES_DIR) -> Engine:
    """Debian 13's engine, or a failure that says how to get it (tests fail, never skip, without it)."""
    engine = Engine(directory / "debian13")
    missing = [p for p in (engine.dockerd, engine.docker, engine.buildx, engine.oras) if not p.exists()]
    if missing:
        raise EngineMissing(f"{missing[0]} is missing: run `{INSTALL}` (it unpacks Debian 13's docker.io, containerd, "
                            f"docker-buildx and oras into {directory}; `.ci/run` does it)")
    return engine
