"""The `image` phase (BENCHMARKS.md, "The pipe image"): the image `make image` builds (bytecode) beside the same
Dockerfile with sources only (PIPE_BYTECODE=0): its weight over the base, its start and `import pipe.pipe` (`measure`
takes any images). The peak RSS of a push is every push phase's: the pipe's code is the same in the image and in the
checkout, and so was its RSS."""
from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo.layout import write_layout
from harness.paths import REPO_ROOT
from harness.pipe_process import image_command

from ..measure import step
from ..phase import Context, Phase
from ..stats import rotate, summary

IMAGES = {"bytecode": "bench-pipe-image:bytecode", "sources": "bench-pipe-image:sources"}
BUILD_TIMEOUT = 900
RUN_TIMEOUT = 30.0
BASE = "bbc-pipe-base:bookworm"  # what scripts/build-pipe-image.sh builds on
FLOOR = "floor (the base: python3 connects at once)"
CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])))"


def sizes(ref: str) -> tuple[int, int]:
    """Bytes of the image (`docker image inspect`'s Size) and of `docker save REF | gzip -6`."""
    out = subprocess.run(["sh", "-c", 'docker image inspect --format "{{.Size}}" "$1" && docker save "$1" | gzip -6 | '
                          'wc -c', "sh", ref], capture_output=True, text=True, timeout=600, check=True).stdout
    size, compressed = out.split()
    return int(size), int(compressed)


def first_request_seconds(image: str, layout: Path, base: str | None = None) -> float:
    """From `docker run` to the first connection the pipe opens to its registry; with `base`, the floor:
    the base image's python3 connecting as soon as it starts."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(RUN_TIMEOUT)
        port = listener.getsockname()[1]
        name = f"bench-start-{secrets.token_hex(4)}"
        variables = {"IMAGE_NAME": "app", "IMAGE_ARCHIVE": str(layout), "WORKSPACE": "acme",
                     "REGISTRY": f"127.0.0.1:{port}", "BITBUCKET_PACKAGES_USERNAME": "u",
                     "BITBUCKET_PACKAGES_TOKEN": "t"}
        docker_args = ["--name", name, "-v", f"{layout}:{layout}:ro"]
        if base is None:  # the pipe, started as the tests start its image, and removed at its first request
            command = image_command(image, variables, docker_args)
        else:
            command = [*image_command(base, variables, [*docker_args, "--entrypoint", "python3"]), "-c", CONNECT,
                       str(port)]
        started = time.monotonic()
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            conn, _ = listener.accept()
            seconds = time.monotonic() - started
            conn.close()
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
            proc.wait(60)
    return seconds


def import_ms(image: str) -> float:
    """`import pipe.pipe` inside the image, as `python3 -X importtime` counts it (no docker run in it)."""
    r = subprocess.run(["docker", "run", "--rm", "--entrypoint", "python3", image, "-X", "importtime", "-c",
                        "import pipe.pipe"], capture_output=True, text=True, timeout=60, check=True)
    return int(r.stderr.strip().splitlines()[-1].split("|")[1]) / 1000


def rounded(values: list[float], digits: int) -> dict[str, float]:
    return {k: round(v, digits) for k, v in summary(values).items() if k in ("median", "min", "max")}


def measure(images: list[str], base: str, reps: int) -> dict:
    """Every figure of the module docstring for `images`, each first in turn."""
    base_size, base_gzip = sizes(base)
    results: dict[str, dict] = {ref: {"mb_over_base": (size - base_size) / 1e6, "gzip_mb_over_base":
                                      (gzip - base_gzip) / 1e6} for ref in images for size, gzip in [sizes(ref)]}
    times: dict[str, list[float]] = {ref: [] for ref in (*images, FLOOR)}
    imports: dict[str, list[float]] = {ref: [] for ref in images}
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        layout = write_layout(Path(tmp) / "layout", {"hello.txt": b"hello\n"}).path
        for ref in images:
            first_request_seconds(ref, layout)  # warm: the image's layers in the page cache
        for rep in range(reps):
            for ref in rotate(tuple(times), rep):
                times[ref].append(first_request_seconds(ref, layout, base if ref == FLOOR else None))
    for rep in range(reps):
        for ref in rotate(tuple(imports), rep):
            imports[ref].append(import_ms(ref))
    for ref in times:
        results.setdefault(ref, {})["first_request_s"] = rounded(times[ref], 3)
        if ref in imports:
            results[ref]["import_pipe_ms"] = rounded(imports[ref], 0)
    return results


def build(ref: str, bytecode: bool) -> None:
    step(["bash", "scripts/build-pipe-image.sh"], BUILD_TIMEOUT, cwd=REPO_ROOT,
         env={**os.environ, "PYTHON": sys.executable, "IMAGE": ref, "PIPE_BYTECODE": "1" if bytecode else "0"})


class ImagePhase(Phase):
    name = "image"

    def unmet(self, ctx: Context) -> str | None:
        return None if shutil.which("docker") else "the docker CLI is not installed"

    def run(self, ctx: Context) -> dict:
        try:
            for label, ref in IMAGES.items():
                build(ref, bytecode=label == "bytecode")
            figures = measure(list(IMAGES.values()), BASE, ctx.settings.image_reps)
        finally:
            subprocess.run(["docker", "rmi", *IMAGES.values()], capture_output=True, timeout=300)
        shipped, sources = (figures[IMAGES[k]] for k in ("bytecode", "sources"))
        figures["ratios"] = {  # bytecode against sources only: below 1 is faster
            "first_request": round(shipped["first_request_s"]["median"] / sources["first_request_s"]["median"], 2),
            "import_pipe": round(shipped["import_pipe_ms"]["median"] / sources["import_pipe_ms"]["median"], 2),
        }
        return figures
