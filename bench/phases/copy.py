"""The `copy` phase (BENCHMARKS.md, "Copy from a registry"): SOURCE_IMAGE against `skopeo copy`, `docker pull` +
`tag` + `push` and the GET -> PUT floor. Cases `promote <size>` (a new tag in the emulator) and `<from>-<to> image` /
`<from>-<to> index` (cold copies each way, then the pipe again: `rerun`)."""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from functools import partial

import requests

from harness.accounts import TOKENS

from .. import measure
from ..machine import settle_freed_pages
from ..phase import Context, PushPhase
from ..pushes import copy_images, engine_daemons
from ..pushes.copy_images import CopyImage
from ..pushes.engine_push import MANIFEST_TYPES, USER, push_timeout
from ..registries import WORKSPACE, ReferenceRegistry, purge_blobs
from ..stats import rotate

PROMOTE_TOOLS = ("pipe", "skopeo", "docker")
COPY_TOOLS = ("pipe", "skopeo", "floor")
SOURCE_TAG = "a"
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
                      headers={**end.headers, "Accept": MANIFEST_TYPES})
    return r.headers.get("Docker-Content-Digest") if r.status_code == 200 else None


def _checked(out: dict, dest: Endpoint, want: str) -> dict:
    if (got := manifest_digest(dest)) != want:
        raise RuntimeError(f"{dest.reference} serves {got} after the copy, not the source's {want}")
    return {**out, "digest_kept": True}


def size_label(nbytes: int) -> str:
    return f"{nbytes // 2**30}GiB" if nbytes >= 2**30 and nbytes % 2**30 == 0 else f"{nbytes // 2**20}MiB"


class CopyPhase(PushPhase):
    name = "copy"

    def unmet(self, ctx: Context) -> str | None:
        missing = [tool for tool in ("skopeo", "dockerd", "ip") if shutil.which(tool) is None]
        return f"the copy phase needs {', '.join(missing)}" if missing else None

    def at(self, label: str, package: str, tag: str) -> Endpoint:
        if label == "reference":
            return Endpoint(label, self.reference.host, package, tag)
        token = self.registry.token(USER, f"repository:{WORKSPACE}/{package}:pull,push")
        return Endpoint(label, self.registry.host, package, tag, f"{USER}:{TOKENS[USER]}",
                        {"Authorization": f"Bearer {token}"})

    def fresh(self, label: str, what: str, tag: str) -> Endpoint:
        self.bench.counter += 1
        return self.at(label, self.bench.new_package(what) if label == "embedded" else f"{what}-{self.bench.counter}",
                       tag)

    def drop(self, dest: Endpoint, image: CopyImage) -> None:
        """Leave the destination as cold as before: the package or repository gone, its blobs purged."""
        if dest.label == "embedded":
            self.bench.drop_package(dest.package)
            purge_blobs(self.registry.root, image.digests)
        else:
            shutil.rmtree(self.reference.root / "docker/registry/v2/repositories" / dest.repository, ignore_errors=True)
            purge_blobs(self.reference.root, image.digests)

    def pipe_copy(self, source: str, source_creds: str | None, dest: Endpoint, want: str, timeout: float) -> dict:
        """The pipe copying `source` (SOURCE_IMAGE as written: a full reference, or `:tag`) to `dest`."""
        variables = {"SOURCE_IMAGE": source, "IMAGE_NAME": f"{dest.package}:{dest.tag}", "TAGS": dest.tag,
                     "REGISTRY": dest.host}
        if source_creds:
            variables["SOURCE_USERNAME"], _, variables["SOURCE_PASSWORD"] = source_creds.partition(":")
        return _checked(self.bench.run_pipe(variables, f"copy-{dest.package}", self.others, timeout), dest, want)

    def skopeo_copy(self, source: Endpoint, dest: Endpoint, want: str, timeout: float) -> dict:
        flags = ["--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false"]
        flags += ["--src-creds", source.creds] if source.creds else ["--src-no-creds"]
        flags += ["--dest-creds", dest.creds] if dest.creds else ["--dest-no-creds"]
        out = self.bench.skopeo(flags, f"docker://{source.reference}", f"docker://{dest.reference}", self.others,
                                timeout, f"copy-{dest.package}")
        return _checked(out, dest, want)

    def floor_copy(self, source: Endpoint, dest: Endpoint, blobs: list[tuple[str, int]], timeout: float) -> dict:
        """The bare loop (pushes/blob_floor.py); its spec (tokens included) goes in a file, never on a command line."""
        spec = self.workdir / f"floor-{self.bench.counter}.json"
        ends = {name: {"base": e.base, "repository": e.repository, "headers": e.headers}
                for name, e in (("source", source), ("dest", dest))}
        spec.write_text(json.dumps({**ends, "blobs": [list(blob) for blob in blobs], "parallelism": FLOOR_PARALLELISM}))
        try:
            out, printed = self.bench.script("blob_floor", str(spec), self.others, timeout, f"floor-{dest.package}")
        finally:
            spec.unlink(missing_ok=True)
        return {**out, "floor_bytes": printed["bytes"], "floor_blobs": printed["blobs"]}

    def docker_promote(self, source: Endpoint, dest: Endpoint, timeout: float) -> dict:
        """`docker pull` + `docker tag` + `docker push` in one timed shell, from a fresh daemon started untimed
        (a Pipelines step's docker service); the CLI logged in through the bench's DOCKER_CONFIG."""
        daemon = engine_daemons.start(engine_daemons.MAIN, self.workdir)
        try:
            script = 'docker pull -q "$1" && docker tag "$1" "$2" && docker push -q "$2"'
            os.sync()
            return measure.run(["sh", "-c", script, "sh", source.reference, dest.reference],
                               self.bench._env(daemon.host), timeout, self.bench.log_file(f"docker-promote-{dest.tag}"),
                               {**self.others, "dockerd": daemon.pid})
        finally:
            daemon.stop()  # by its pid; removes its directories and bridge

    def _seed(self, name: str, kind: str, layer_bytes: int, label: str) -> tuple[CopyImage, Endpoint]:
        t0, layers = time.monotonic(), self.s.copy_layers
        image = copy_images.write(kind, self.workdir / f"layout-{name}", layers, layer_bytes)
        written, package = round(time.monotonic() - t0, 1), f"src-{name}".lower()
        if label == "embedded":
            package = self.bench.new_package(package)
            self.packages.append(package)  # kept to the end of the phase
        source = self.at(label, package, SOURCE_TAG)
        seconds = copy_images.seed(image, f"docker://{source.reference}", source.creds)
        shutil.rmtree(image.layout, ignore_errors=True)
        if manifest_digest(source) != image.digest:
            raise RuntimeError(f"seeding {source.reference}: it does not serve {image.digest}")
        self.facts[name] = {"kind": kind, "registry": label, "layers": layers, "layer_bytes": layer_bytes,
                            "compressed_bytes": image.compressed_bytes, "blobs": len(image.blobs),
                            "digest": image.digest, "written_s": written, "seeded_s": seconds}
        print(f"   seeded {name} ({image.compressed_bytes / 1e6:.0f} MB compressed) into {label}: "
              f"written in {written} s, pushed in {seconds} s", flush=True)
        return image, source

    def promote(self, case: str, image: CopyImage, source: Endpoint, rep: int) -> None:
        timeout = push_timeout(image.compressed_bytes)

        def one(tool: str) -> dict:
            dest = self.at("embedded", source.package, f"{tool}-{rep}")
            if tool == "pipe":
                out = self.pipe_copy(f":{SOURCE_TAG}", None, dest, image.digest, timeout)
            elif tool == "skopeo":
                out = self.skopeo_copy(source, dest, image.digest, timeout)
            else:
                out = self.docker_promote(source, dest, timeout)
                got = manifest_digest(dest)
                if got is None:
                    raise RuntimeError(f"{dest.reference} is not there after docker push")
                out["digest_kept"] = got == image.digest  # docker re-writes an OCI manifest as its own
            out["compressed_image_bytes"] = image.compressed_bytes
            return out

        for tool in rotate(PROMOTE_TOOLS, rep):
            self.record(case, tool, partial(one, tool))

    def copy(self, case: str, image: CopyImage, source: Endpoint, to: str, rep: int) -> None:
        timeout = push_timeout(image.compressed_bytes)
        blobs = [(blob.digest, blob.size) for blob in image.blobs]

        def one(tool: str) -> None:
            dest = self.fresh(to, f"{image.kind}-{tool}", "copied")
            settle_freed_pages()  # the last copy's purged blobs: every tool starts from the same memory
            try:
                if tool == "pipe":
                    run = partial(self.pipe_copy, source.reference, source.creds, dest, image.digest, timeout)
                    if self.record(case, tool, run) is not None:
                        self.record(case, "rerun", run)  # the same copy again: everything is there
                elif tool == "skopeo":
                    self.record(case, tool, lambda: self.skopeo_copy(source, dest, image.digest, timeout))
                else:
                    self.record(case, tool, lambda: self.floor_copy(source, dest, blobs, timeout))
            finally:
                self.drop(dest, image)

        for tool in rotate(COPY_TOOLS, rep):
            try:
                one(tool)
            except Exception as exc:  # making or dropping the destination
                self.failed(f"{case} {tool}", exc)

    def measure(self) -> dict:
        s = self.s
        (self.workdir / "reference").mkdir(parents=True, exist_ok=True)
        self.reference = ReferenceRegistry(self.workdir / "reference")
        self.facts: dict[str, dict] = {}
        self.packages: list[str] = []
        self.bench.prepare()
        self.reference.start()
        self.others = {"embedded": self.registry.pid, "reference": self.reference.pid}  # whose CPU-seconds count
        promotions: list[tuple[str, CopyImage, Endpoint]] = []
        copies: list[tuple[str, CopyImage, Endpoint, str]] = []
        try:
            for layer_bytes in (s.copy_small_layer_bytes, s.copy_layer_bytes):
                case = f"promote {size_label(s.copy_layers * layer_bytes)}"
                promotions.append((case, *self._seed(case.replace(" ", "-"), "image", layer_bytes, "embedded")))
            for direction in s.copy_directions:
                frm, _, to = direction.partition("-")
                for kind in copy_images.KINDS:
                    case = f"{direction} {kind}"
                    copies.append((case, *self._seed(case.replace(" ", "-"), kind, s.copy_layer_bytes, frm), to))
            for rep in self.repetitions(s.copy_reps):
                for case, image, source in promotions:
                    self.promote(case, image, source, rep)
                for case, image, source, to in copies:
                    self.copy(case, image, source, to, rep)
        finally:
            for package in self.packages:
                self.bench.drop_package(package)
            self.bench.cleanup()
            self.reference.stop()
            shutil.rmtree(self.reference.root, ignore_errors=True)
        return self.section(s.copy_layers, s.copy_layer_bytes, cores=os.cpu_count(), images=self.facts)
