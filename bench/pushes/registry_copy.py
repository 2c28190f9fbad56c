"""The tools of the copy phase, each run as its own process and measured alike (bench/measure.py: wall
time, its CPU-seconds and peak RSS, the CPU-seconds of both registries and of dockerd):

- the pipe with SOURCE_IMAGE (`python -m pipe`, the destination in REGISTRY / WORKSPACE / IMAGE_NAME);
- `skopeo copy --all --preserve-digests` between the same two references;
- the floor: the same blobs streamed GET -> PUT by a bare loop (bench/pushes/blob_floor.py);
- what a deployment step does today to promote: `docker pull` + `docker tag` + `docker push` from a
  fresh daemon (harness/second_daemon.py, started untimed, one per measurement).
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from harness.accounts import TOKENS
from harness.paths import REPO_ROOT
from harness.second_daemon import SecondDaemon

from .. import measure
from ..registries.embedded import WORKSPACE
from .engine_push import OUTPUT_FIELDS, OUTPUT_FILE, USER, EngineBench

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"))
FLOOR_PARALLELISM = 3  # the pipe's UPLOAD_PARALLELISM default
DAEMON_START_TIMEOUT = 60.0
DAEMON_STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    """One image reference in one of the two registries, with how each tool logs in to it."""
    label: str  # "embedded" or "reference"
    host: str
    package: str  # the repository is acme/<package> in both
    tag: str
    creds: str | None = None  # user:token for skopeo and the pipe; None: the reference registry, no auth
    headers: dict[str, str] = field(default_factory=dict)  # for the floor and the checks (a bearer token)

    @property
    def repository(self) -> str:
        return f"{WORKSPACE}/{self.package}"

    @property
    def reference(self) -> str:
        return f"{self.host}/{self.repository}:{self.tag}"

    @property
    def base(self) -> str:
        return f"http://{self.host}"


def manifest_digest(end: Endpoint) -> str | None:
    """The digest the registry serves for the tag (None: no such tag)."""
    r = requests.head(f"{end.base}/v2/{end.repository}/manifests/{end.tag}", timeout=30,
                      headers={**end.headers, "Accept": ACCEPT})
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def _checked(out: dict, dest: Endpoint, want: str) -> dict:
    got = manifest_digest(dest)
    if got != want:
        raise RuntimeError(f"{dest.reference} serves {got} after the copy, not the source's {want}")
    out["digest_kept"] = True
    return out


def pipe_copy(bench: EngineBench, source: str, source_creds: str | None, dest: Endpoint, want: str, others: dict,
              timeout: float, variables: dict[str, str] | None = None, wrap: list[str] | None = None) -> dict:
    """The pipe copying `source` (SOURCE_IMAGE as written: a full reference, or `:tag`) to `dest`; `variables`:
    more pipe variables (e.g. UPLOAD_PARALLELISM); `wrap`: a command the pipe runs under (a profiler)."""
    outdir = bench.workdir / f"out-{bench.counter}-copy"
    env = bench._env()
    env.update({
        "SOURCE_IMAGE": source,
        "IMAGE_NAME": f"{dest.package}:{dest.tag}",
        "TAGS": dest.tag,
        "WORKSPACE": WORKSPACE,
        "BITBUCKET_PACKAGES_USERNAME": USER,
        "BITBUCKET_PACKAGES_TOKEN": TOKENS[USER],
        "REGISTRY": dest.host,
        "BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(outdir),
    })
    if source_creds:
        env["SOURCE_USERNAME"], _, env["SOURCE_PASSWORD"] = source_creds.partition(":")
    env.update(variables or {})
    os.sync()  # untimed: no dirty pages of an earlier step are written back during this one
    log = bench.log_file(f"pipe-copy-{dest.package}")
    out = measure.run([*(wrap or []), sys.executable, "-m", "pipe"], env, timeout, log, others, cwd=REPO_ROOT)
    written = json.loads((outdir / OUTPUT_FILE).read_text())
    out.update({f"output_{k}": written.get(k) for k in OUTPUT_FIELDS})
    return _checked(out, dest, want)


def skopeo_copy(bench: EngineBench, source: Endpoint, dest: Endpoint, want: str, others: dict,
                timeout: float) -> dict:
    cmd = ["skopeo", "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
    cmd += ["--src-creds", source.creds] if source.creds else ["--src-no-creds"]
    cmd += ["--dest-creds", dest.creds] if dest.creds else ["--dest-no-creds"]
    cmd += [f"docker://{source.reference}", f"docker://{dest.reference}"]
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    log = bench.log_file(f"skopeo-copy-{dest.package}")
    os.sync()
    out = measure.run(cmd, env, timeout, log, others)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("Copying blob")]
    out.update({"skopeo_blobs_copied": len(lines), "skopeo_blobs_skipped": sum("skipped" in ln for ln in lines)})
    return _checked(out, dest, want)


def floor_copy(bench: EngineBench, source: Endpoint, dest: Endpoint, blobs: list[tuple[str, int]], others: dict,
               timeout: float, parallelism: int = FLOOR_PARALLELISM) -> dict:
    """The bare loop; the spec (tokens included) goes in a file of the run's workdir, never on a command line."""
    spec = bench.workdir / f"floor-{bench.counter}.json"
    spec.write_text(json.dumps({
        "source": {"base": source.base, "repository": source.repository, "headers": source.headers},
        "dest": {"base": dest.base, "repository": dest.repository, "headers": dest.headers},
        "blobs": [list(b) for b in blobs], "parallelism": parallelism,
    }))
    log = bench.log_file(f"floor-{dest.package}")
    os.sync()
    try:
        out = measure.run([sys.executable, "-m", "bench.pushes.blob_floor", str(spec)], bench._env(), timeout, log,
                          others, cwd=REPO_ROOT)
    finally:
        spec.unlink(missing_ok=True)
    printed = json.loads(log.read_text().strip().splitlines()[-1])
    out.update({"floor_bytes": printed["bytes"], "floor_blobs": printed["blobs"]})
    return out


def docker_promote(bench: EngineBench, workdir: Path, source: Endpoint, dest: Endpoint, others: dict,
                   timeout: float) -> dict:
    """`docker pull` + `docker tag` + `docker push` in one timed shell, from a fresh daemon started untimed
    (a Pipelines step's docker service); the CLI is logged in through bench's DOCKER_CONFIG."""
    daemon = SecondDaemon(start_timeout=DAEMON_START_TIMEOUT, stop_timeout=DAEMON_STOP_TIMEOUT, data_parent=workdir)
    try:
        daemon.start()
        env = bench._env(daemon.docker_host)
        script = 'docker pull -q "$1" && docker tag "$1" "$2" && docker push -q "$2"'
        os.sync()
        out = measure.run(["sh", "-c", script, "sh", source.reference, dest.reference], env, timeout,
                          bench.log_file(f"docker-promote-{dest.tag}"), {**others, "dockerd": daemon.pid})
    finally:
        daemon.stop()  # by its pid; removes its directories and bridge
    return out
