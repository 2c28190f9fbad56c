"""The `image` phase (BENCHMARKS.md, "The pipe image"): the image `make image` builds (bytecode) beside the same
Dockerfile with sources only (PIPE_BYTECODE=0), measured by bench/pushes/pipe_image.py."""
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
            figures = pipe_image.measure(list(IMAGES.values()), pipe_image.BASE, s.image_reps, s.image_push_mib,
                                         s.image_push_reps)
        finally:
            subprocess.run(["docker", "rmi", *IMAGES.values()], capture_output=True, timeout=300)
        shipped, sources = (figures[IMAGES[k]] for k in ("bytecode", "sources"))
        figures["ratios"] = {  # bytecode against sources only: below 1 is faster
            "first_request": round(shipped["first_request_s"]["median"] / sources["first_request_s"]["median"], 2),
            "import_pipe": round(shipped["import_pipe_ms"]["median"] / sources["import_pipe_ms"]["median"], 2),
        }
        return figures
