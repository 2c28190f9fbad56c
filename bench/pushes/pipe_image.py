"""The pipe image's weight and start, for the `image` phase and for any images:
`python -m bench.pushes.pipe_image IMAGE... [--reps N] [--push-mib N]`, JSON on stdout; what it measures:
BENCHMARKS.md, "The pipe image"."""
from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from demo.layout import write_layout
from harness.accounts import TOKENS, default_config
from harness.docker_images import build_image, remove_image
from harness.pipe_process import image_command, run_pipe
from harness.registry_process import RegistryProcess

from ..measure import status_kb
from ..stats import rotate, summary

RUN_TIMEOUT = 30.0
BASE = "bbc-pipe-base:bookworm"  # what scripts/build-pipe-image.sh builds on


def size(ref: str) -> int:
    return int(subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], capture_output=True,
                              text=True, check=True, timeout=60).stdout)


def compressed_size(ref: str) -> int:
    """Bytes of `docker save REF | gzip -6`."""
    r = subprocess.run(["sh", "-c", 'docker save "$1" | gzip -6 | wc -c', "sh", ref], capture_output=True, text=True,
                       timeout=600, check=True)
    return int(r.stdout)


FLOOR = "floor (the base: python3 connects at once)"
CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])))"


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


PUSH_LAYERS = 4
PUSH_PACKAGE = "bench-pipe-image-push"
PUSH_TIMEOUT = 600.0
SAMPLE_S = 0.02


def container_pid(name: str) -> int | None:
    r = subprocess.run(["docker", "inspect", "--format", "{{.State.Pid}}", name], capture_output=True, text=True,
                       timeout=30)
    return int(r.stdout) if r.returncode == 0 and r.stdout.strip() not in ("", "0") else None


def push_peak_rss(pipe_image: str, source: str, workdir: Path, how: str) -> float:
    """Peak RSS of one push of `source` to a fresh registry: `how` is "image" (docker run) or "checkout": the
    last VmHWM (the kernel's high-water mark of RSS) read before the pipe ended, polled every 20 ms."""
    config = {**default_config(), "limits": {}}  # the default limits: 32 GiB a layer
    config["workspaces"]["acme"]["packages"][PUSH_PACKAGE] = "web-app"
    registry = RegistryProcess(workdir / f"registry-{how}", config).start()
    name = f"bench-push-{secrets.token_hex(4)}"
    peak = {"kb": 0, "pid": None, "at": 0.0}

    def sample(pid: int) -> None:  # the pipe's own pid, or the docker CLI's: then the container's
        if time.monotonic() - peak["at"] < SAMPLE_S:
            return
        peak["at"] = time.monotonic()
        peak["pid"] = peak["pid"] or (pid if how == "checkout" else container_pid(name))
        if peak["pid"]:
            peak["kb"] = max(peak["kb"], status_kb(peak["pid"], "VmHWM") or 0)

    try:
        variables = {"IMAGE_NAME": source, "TAGS": "latest", "WORKSPACE": "acme", "REGISTRY": registry.host,
                     "BITBUCKET_PACKAGES_USERNAME": "pipelines", "BITBUCKET_PACKAGES_TOKEN": TOKENS["pipelines"]}
        docker_args = ["--name", name, "-v", "/var/run/docker.sock:/var/run/docker.sock"]
        done = run_pipe(variables, timeout=PUSH_TIMEOUT, watch=sample, image=None if how == "checkout" else pipe_image,
                        docker_args=docker_args)
    finally:
        registry.stop()
    if done.returncode != 0:
        raise RuntimeError(f"the push failed with exit {done.returncode}: {done.output.strip()[-500:]}")
    return round(peak["kb"] * 1024 / 1e6, 1)


def rounded(values: list[float], digits: int) -> dict[str, float]:
    return {k: round(v, digits) for k, v in summary(values).items() if k in ("median", "min", "max")}


def measure(images: list[str], base: str, reps: int, push_mib: int = 0, push_reps: int = 3) -> dict:
    """Every figure of the module docstring for `images`, each first in turn; the push (when push_mib) by the
    first of them."""
    results: dict[str, dict] = {ref: {"mb_over_base": (size(ref) - size(base)) / 1e6} for ref in images}
    base_gzip = compressed_size(base)
    for ref in images:
        results[ref]["gzip_mb_over_base"] = (compressed_size(ref) - base_gzip) / 1e6
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
    if push_mib:
        with tempfile.TemporaryDirectory(prefix="bench-push-") as tmp:
            source = build_image(f"{PUSH_PACKAGE}:{secrets.token_hex(4)}", Path(tmp) / "context",
                                 [push_mib // PUSH_LAYERS * 2**20] * PUSH_LAYERS)  # random bytes
            peaks: dict[str, list[float]] = {"image": [], "checkout": []}
            try:
                for rep in range(push_reps):
                    for how in rotate(tuple(peaks), rep):
                        peaks[how].append(push_peak_rss(images[0], source, Path(tmp) / f"{how}-{rep}", how))
            finally:
                remove_image(source)
        results["push_peak_rss_mb"] = {"mib": push_mib, "image": images[0], **peaks}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pushes.pipe_image", description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--push-mib", type=int, default=0, help="also the peak RSS of a push of this many MiB")
    parser.add_argument("--push-reps", type=int, default=3)
    args = parser.parse_args(argv)
    results = measure(args.images, BASE, args.reps, args.push_mib, args.push_reps)
    json.dump(results, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
