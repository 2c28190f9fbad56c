"""The tools the push phases measure against the embedded registry, each its own process (bench/measure.py). Every
push goes to a package made for it alone, deleted right after: the embedded registry answers HEAD and mount only for
blobs linked to a live package, so nothing is skipped or mounted by accident."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import docker
import requests

from harness.accounts import TOKENS
from harness.docker_images import remove_image
from harness.paths import REPO_ROOT
from harness.pipe_process import read_output
from pipe import oci

from .. import measure
from ..registries import WORKSPACE, EmbeddedRegistry

USER = "pipelines"
PACKAGE_PREFIX = "bench-e-"
EXPORT_CHUNK = 1024**2
# A push from the containerd image store stores BuildKit's index (the image and its attestation manifest): the image's
# manifest is measured.
MANIFEST_TYPES = ", ".join(oci.ACCEPTED_MANIFESTS)
# The fields of the pipe's output file each measurement keeps (as output_<field>).
OUTPUT_FIELDS = ("engine", "pushed_bytes", "layers_uploaded", "layers_mounted", "layers_skipped", "source")


def no_docker_host() -> dict[str, str]:
    """This environment without DOCKER_HOST: a tool talks to the daemon it is told of, or to the default one."""
    return {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}


def push_timeout(image_bytes: int) -> float:
    """Generous: a push slower than 5 MB/s is treated as hung."""
    return 120.0 + image_bytes / 5e6


class EngineBench:
    def __init__(self, registry: EmbeddedRegistry, workdir: Path) -> None:
        self.registry, self.host, self.workdir, self.counter = registry, registry.host, workdir, 0
        self.docker_config, self.logs = workdir / "docker-config", workdir / "logs"
        self.tagged: list[str] = []

    def prepare(self) -> None:
        """Log the docker CLI in once (the credentials live client-side, in DOCKER_CONFIG, for every daemon)."""
        self.docker_config.mkdir(parents=True, exist_ok=True)
        measure.step(["docker", "login", "--username", USER, "--password-stdin", self.host], 60, input=TOKENS[USER],
                     env=self._env())

    def _env(self, docker_host: str | None = None) -> dict[str, str]:
        return {**no_docker_host(), "DOCKER_CONFIG": str(self.docker_config),
                **({"DOCKER_HOST": docker_host} if docker_host else {})}

    def log_file(self, what: str) -> Path:
        self.counter += 1
        self.logs.mkdir(parents=True, exist_ok=True)
        return self.logs / f"{self.counter:03d}-{what}.log"

    def new_package(self, label: str) -> str:
        self.counter += 1
        name = f"{PACKAGE_PREFIX}{label}-{self.counter}"
        r = self.registry.api("POST", f"/workspaces/{WORKSPACE}/packages", json={"name": name, "repository": "web-app"})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"creating package {name}: HTTP {r.status_code} {r.text[:200]}")
        return name

    def drop_package(self, name: str) -> None:
        r = self.registry.api("DELETE", f"/workspaces/{WORKSPACE}/packages/{name}")
        if r.status_code not in (200, 202, 204, 404):
            raise RuntimeError(f"deleting package {name}: HTTP {r.status_code} {r.text[:200]}")

    def check_tag(self, package: str, tag: str, with_digests: bool = False) -> dict:
        """The tag must be there; its manifest gives the compressed size of what was pushed (and, when
        asked, the blobs' digests, to purge them from the registry's root afterwards)."""
        target = self.registry.target(package)

        def get(reference: str) -> requests.Response:
            r = requests.get(f"http://{self.host}/v2/{target.repository}/manifests/{reference}", timeout=30,
                             headers={**target.headers(), "Accept": MANIFEST_TYPES})
            if r.status_code != 200:
                raise RuntimeError(f"{package}:{reference} is not in the registry after the push: HTTP {r.status_code}")
            return r

        r = get(tag)
        manifest = oci.parse(r.content, r.headers.get("Content-Type", ""))
        if isinstance(manifest, oci.Index):  # the image's own manifest, not an attestation's (os "unknown")
            image = next((m for m in manifest.manifests if m.platform is None or m.platform.os != "unknown"), None)
            if image is None:
                raise RuntimeError(f"{package}:{tag} is an index without an image manifest")
            manifest = oci.Manifest.parse(get(image.digest).content)
        blobs = [*manifest.layers, manifest.config]
        out = {"compressed_image_bytes": sum(d.size for d in blobs),
               "manifest_digest": r.headers.get("Docker-Content-Digest")}
        return {**out, "blob_digests": [d.digest for d in blobs]} if with_digests else out

    def _tag(self, image: str, ref: str, docker_host: str | None, cli: str) -> None:
        measure.step([cli, "tag", image, ref], 60, env=self._env(docker_host))
        if docker_host is None:  # a fresh daemon goes away with its tags
            self.tagged.append(ref)

    # Each measurement starts after an untimed sync: no dirty pages of an earlier step are written back during it.
    def docker_push(self, image: str, package: str, tag: str, others: dict, timeout: float,
                    docker_host: str | None = None, cli: str = "docker") -> dict:
        """`cli`: the daemon's own docker CLI (Docker 26's for its daemons), logged in through DOCKER_CONFIG."""
        ref = f"{self.host}/{WORKSPACE}/{package}:{tag}"
        self._tag(image, ref, docker_host, cli)
        os.sync()
        out = measure.run([cli, "push", ref], self._env(docker_host), timeout,
                          self.log_file(f"docker-push-{package}"), others)
        out.update(self.check_tag(package, tag))
        return out

    def run_pipe(self, variables: dict[str, str], label: str, others: dict, timeout: float,
                 docker_host: str | None = None) -> dict:
        """The pipe from this checkout with `variables` over the defaults (this registry, its pipelines user);
        the figures and the fields of its output file."""
        outdir = self.workdir / f"out-{self.counter}-{label}"
        variables = {"WORKSPACE": WORKSPACE, "BITBUCKET_PACKAGES_USERNAME": USER,
                     "BITBUCKET_PACKAGES_TOKEN": TOKENS[USER], "REGISTRY": self.host,
                     "BITBUCKET_PIPE_SHARED_STORAGE_DIR": str(outdir), **variables}
        os.sync()
        out = measure.pipe(variables, self._env(docker_host), timeout, self.log_file(f"pipe-{label}"), others)
        written = read_output(outdir)
        out.update({f"output_{k}": written.get(k) for k in OUTPUT_FIELDS})
        return out

    def pipe(self, engine: str, image: str, package: str, tag: str, others: dict, timeout: float,
             docker_host: str | None = None, cli: str = "docker") -> dict:
        """The pipe with PUSH_ENGINE=`engine`; the package is the local image's name, so the image is tagged so."""
        self._tag(image, f"{package}:{tag}", docker_host, cli)
        out = self.run_pipe({"PUSH_ENGINE": engine, "IMAGE_NAME": f"{package}:{tag}", "TAGS": tag},
                            f"{engine}-{package}", others, timeout, docker_host)
        out.update(self.check_tag(package, tag))
        return out

    def skopeo(self, flags: list[str], source: str, dest: str, others: dict, timeout: float, label: str) -> dict:
        """`skopeo copy` (TLS verification off: on loopback it falls back from https to http), with the blobs
        its log names and how many of those it says it skipped."""
        log = self.log_file(f"skopeo-{label}")
        os.sync()
        out = measure.run(["skopeo", "copy", *flags, source, dest], no_docker_host(), timeout, log, others)
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.startswith("Copying blob")]
        out.update({"skopeo_blobs_copied": len(lines), "skopeo_blobs_skipped": sum("skipped" in ln for ln in lines)})
        return out

    def export(self, image: str, others: dict, timeout: float, docker_host: str | None = None) -> dict:
        """GET /images/{name}/get drained to nowhere: what reading the image from the daemon costs at least.
        `first_byte_s`: docker 20.10 copies the whole image into a temporary directory before it sends a byte."""
        client = docker.APIClient(base_url=docker_host or "unix:///var/run/docker.sock", timeout=timeout)
        first_byte, nbytes = None, 0
        try:
            os.sync()
            with measure.others_cpu(others) as other:
                t0 = time.monotonic()
                for chunk in client.get_image(image, chunk_size=EXPORT_CHUNK):
                    if first_byte is None:
                        first_byte = time.monotonic() - t0
                    nbytes += len(chunk)
                    if time.monotonic() - t0 > timeout:
                        raise RuntimeError(f"export of {image} did not finish within {timeout:.0f}s")
                seconds = time.monotonic() - t0
        finally:
            client.close()
        return {"seconds": round(seconds, 3), "export_bytes": nbytes, "first_byte_s": round(first_byte or 0, 3),
                **other}

    def script(self, module: str, arg: str, others: dict, timeout: float, label: str) -> tuple[dict, dict]:
        """`python -m bench.pushes.<module> ARG` (a floor, measured as the pipe is: its own process, CPU, peak
        RSS): the figures, and the JSON line it printed last."""
        log = self.log_file(label)
        os.sync()
        out = measure.run([sys.executable, "-m", f"bench.pushes.{module}", arg], self._env(), timeout, log, others,
                          cwd=REPO_ROOT)
        return out, json.loads(log.read_text().strip().splitlines()[-1])

    def cleanup(self) -> None:
        """Remove the registry references this benchmark tagged in the default daemon (the images themselves are
        the phase's to remove)."""
        prefixes = (f"{self.host}/{WORKSPACE}/{PACKAGE_PREFIX}", PACKAGE_PREFIX)
        r = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                           capture_output=True, text=True, timeout=60)
        if refs := sorted({*self.tagged, *(ref for ref in r.stdout.split() if ref.startswith(prefixes))}):
            remove_image(*refs)
