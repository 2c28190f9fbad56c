"""`skopeo copy` of an image archive to the embedded registry, measured like the pipe (bench/measure.py:
wall time, its CPU-seconds and peak RSS, the registry's and dockerd's CPU-seconds).

What skopeo sent is taken as what the registry holds for the tag afterwards (the manifest's layers and
config): the package is new, and the embedded registry answers HEAD and mount only for blobs linked to a
live package, so every blob of that manifest had to be uploaded. Its log's "skipped" lines are counted
as a check of that.
"""
from __future__ import annotations

import os

from harness.accounts import TOKENS

from .. import measure
from ..registries.embedded import WORKSPACE
from .engine_push import USER, EngineBench


def _blob_lines(log: str) -> dict:
    lines = [line for line in log.splitlines() if line.startswith("Copying blob")]
    return {"skopeo_blobs_copied": len(lines), "skopeo_blobs_skipped": sum("skipped" in line for line in lines)}


def skopeo_copy(bench: EngineBench, source: str, package: str, tag: str, others: dict, timeout: float) -> dict:
    dest = f"docker://{bench.host}/{WORKSPACE}/{package}:{tag}"
    # Plain HTTP on loopback: with TLS verification off skopeo falls back from https to http.
    cmd = ["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"{USER}:{TOKENS[USER]}", source, dest]
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    log = bench.log_file(f"skopeo-{package}")
    os.sync()  # untimed, as before the pipe: no dirty pages of an earlier step are written back during this one
    out = measure.run(cmd, env, timeout, log, others)
    out.update(bench.check_tag(package, tag, with_digests=True))
    out.update(_blob_lines(log.read_text(errors="replace")))
    return out
