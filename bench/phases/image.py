"""The `image` phase: the pipe image as `make image` builds it (compiled bytecode) beside the same
Dockerfile with sources only (PIPE_BYTECODE=0), both on the offline base. Per image: its size over the
base (plain and gzip), the time from `docker run` to its first registry request beside the floor (the
base's python3 connecting at once), `import pipe.pipe` inside it; then the peak RSS of a push of
image_push_mib MiB from the shipped image beside the pipe from the checkout (bench/pushes/pipe_image.py).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from harness.paths import REPO_ROOT

from ..phase import Context, Phase
from ..pushes import pipe_image

IMAGES = {"bytecode": "bench-pipe-image:bytecode", "sources": "bench-pipe-image:sources"}
BUILD_TIMEOUT = 900


def build(ref: str, bytecode: bool) -> None:
    r = subprocess.run(["bash", "scripts/build-pipe-image.sh"], cwd=REPO_ROOT, capture_output=True, text=True,
                       timeout=BUILD_TIMEOUT, env={**os.environ, "PYTHON": sys.executable, "IMAGE": ref,
                                                   "PIPE_BYTECODE": "1" if bytecode else "0"})
    if r.returncode != 0:
        raise RuntimeError(f"scripts/build-pipe-image.sh failed for {ref}: {r.stderr.strip()[-500:]}")


class ImagePhase(Phase):
    name = "image"

    def unmet(self, ctx: Context) -> str | None:
        return None if shutil.which("docker") else "the docker CLI is not installed"

    def run(self, ctx: Context) -> dict:
        s = ctx.settings
        try:
            for label, ref in IMAGES.items():
                build(ref, bytecode=label == "bytecode")
            figures = pipe_image.measure(list(IMAGES.values()), pipe_image.BASE, s.image_reps, True,
                                         s.image_push_mib, s.image_push_reps)
        finally:
            subprocess.run(["docker", "rmi", *IMAGES.values()], capture_output=True, timeout=300)
        shipped, sources = (figures[IMAGES[k]] for k in ("bytecode", "sources"))
        figures["ratios"] = {  # bytecode against sources only: below 1 is faster
            "first_request": round(shipped["first_request_s"]["median"] / sources["first_request_s"]["median"], 2),
            "import_pipe": round(shipped["import_pipe_ms"]["median"] / sources["import_pipe_ms"]["median"], 2),
        }
        return figures
