"""The images of the engine phase, built offline (FROM scratch) once per run.

Two kinds, each as two tags that share every layer but the top one (the Pipelines case needs the
older one in the registry):
- `usr`: real files, a tar of /usr cut into layers (compressible like a root filesystem);
- `random`: random bytes (incompressible).
Layer files are written in 1 MiB pieces, so memory stays flat whatever the size.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

PIECE = 1024**2
KINDS = ("usr", "random")
BUILD_TIMEOUT = 900.0


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


def _write_usr(files: list[Path], size: int) -> None:
    """Consecutive `size`-byte cuts of one tar stream of /usr, one per file."""
    tar = subprocess.Popen(["tar", "-cf", "-", "--one-file-system", "-C", "/", "usr"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL)
    assert tar.stdout is not None
    try:
        for path in files:
            left = size
            with open(path, "wb") as out:
                while left:
                    piece = tar.stdout.read(min(PIECE, left))
                    if not piece:
                        raise RuntimeError(f"a tar of /usr is smaller than {len(files)} x {size} bytes")
                    out.write(piece)
                    left -= len(piece)
    finally:
        tar.stdout.close()
        tar.kill()  # it is cut off on purpose once enough is read
        tar.wait(30)


def _write_random(files: list[Path], size: int) -> None:
    for path in files:
        with open(path, "wb") as out:
            for offset in range(0, size, PIECE):
                out.write(os.urandom(min(PIECE, size - offset)))


def _dockerfile(layer_files: list[str], nonce: str) -> str:
    lines = ["FROM scratch", *[f"COPY {name} /{name}" for name in layer_files], f'LABEL bench.nonce="{nonce}"']
    return "\n".join(lines) + "\n"


def build(kind: str, context: Path, layers: int, layer_bytes: int) -> EngineImage:
    """Build `bench-engine-<kind>:previous` and `:current`; their first layers-1 layers are the same."""
    context.mkdir(parents=True, exist_ok=True)
    names = [f"layer{i}.bin" for i in range(layers - 1)] + ["top-previous.bin", "top-current.bin"]
    files = [context / n for n in names]
    (_write_usr if kind == "usr" else _write_random)(files, layer_bytes)
    image = EngineImage(kind, f"bench-engine-{kind}:previous", f"bench-engine-{kind}:current", layers, layer_bytes)
    nonce = secrets.token_hex(8)  # the same config for both but the top layer: only that differs
    for ref, top in ((image.previous, names[-2]), (image.current, names[-1])):
        dockerfile = context / f"Dockerfile.{top}"
        dockerfile.write_text(_dockerfile([*names[:-2], top], nonce))
        r = subprocess.run(["docker", "build", "-q", "-f", str(dockerfile), "-t", ref, str(context)],
                           capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        if r.returncode != 0:
            raise RuntimeError(f"docker build {ref} failed: {r.stderr.strip()[-500:]}")
    shutil.rmtree(context, ignore_errors=True)
    return image


def remove(*refs: str) -> None:
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, timeout=300)
