"""The copy phase's tools, measured alike (bench/measure.py): the pipe with SOURCE_IMAGE, `skopeo copy --all
--preserve-digests`, the floor (pushes/blob_floor.py), and `docker pull` + `tag` + `push` from a fresh daemon."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field

import requests

from harness.paths import REPO_ROOT

from .. import measure
from ..registries import WORKSPACE
from . import engine_daemons
from .engine_push import EngineBench

ACCEPT = ", ".join((
    "application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"))
FLOOR_PARALLELISM = 3  # the pipe's UPLOAD_PARALLELISM default


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
              timeout: float) -> dict:
    """The pipe copying `source` (SOURCE_IMAGE as written: a full reference, or `:tag`) to `dest`."""
    variables = {"SOURCE_IMAGE": source, "IMAGE_NAME": f"{dest.package}:{dest.tag}", "TAGS": dest.tag,
                 "REGISTRY": dest.host}
    if source_creds:
        variables["SOURCE_USERNAME"], _, variables["SOURCE_PASSWORD"] = source_creds.partition(":")
    return _checked(bench.run_pipe(variables, f"copy-{dest.package}", others, timeout), dest, want)


def skopeo_copy(bench: EngineBench, source: Endpoint, dest: Endpoint, want: str, others: dict,
                timeout: float) -> dict:
    flags = ["--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
    flags += ["--src-creds", source.creds] if source.creds else ["--src-no-creds"]
    flags += ["--dest-creds", dest.creds] if dest.creds else ["--dest-no-creds"]
    out = bench.skopeo(flags, f"docker://{source.reference}", f"docker://{dest.reference}", others, timeout,
                       f"copy-{dest.package}")
    return _checked(out, dest, want)


def floor_copy(bench: EngineBench, source: Endpoint, dest: Endpoint, blobs: list[tuple[str, int]], others: dict,
               timeout: float) -> dict:
    """The bare loop; the spec (tokens included) goes in a file of the run's workdir, never on a command line."""
    spec = bench.workdir / f"floor-{bench.counter}.json"
    spec.write_text(json.dumps({
        "source": {"base": source.base, "repository": source.repository, "headers": source.headers},
        "dest": {"base": dest.base, "repository": dest.repository, "headers": dest.headers},
        "blobs": [list(b) for b in blobs], "parallelism": FLOOR_PARALLELISM,
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


def docker_promote(bench: EngineBench, source: Endpoint, dest: Endpoint, others: dict, timeout: float) -> dict:
    """`docker pull` + `docker tag` + `docker push` in one timed shell, from a fresh daemon started untimed
    (a Pipelines step's docker service); the CLI is logged in through bench's DOCKER_CONFIG."""
    daemon = engine_daemons.start(engine_daemons.MAIN, bench.workdir)
    try:
        script = 'docker pull -q "$1" && docker tag "$1" "$2" && docker push -q "$2"'
        os.sync()
        return measure.run(["sh", "-c", script, "sh", source.reference, dest.reference], bench._env(daemon.host),
                           timeout, bench.log_file(f"docker-promote-{dest.tag}"), {**others, "dockerd": daemon.pid})
    finally:
        daemon.stop()  # by its pid; removes its directories and bridge
