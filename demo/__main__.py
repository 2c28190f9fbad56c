"""`make demo` (`python -m demo`): the main job end to end on one machine, in under 30 s.

The emulator starts on loopback with the sample workspace; the pipe pushes an image to it under two
tags; the image is read back and its digest compared with the one the pipe reported. With a Docker
daemon, the image comes from `docker build` and goes back through `docker pull`; without one, it is an
OCI layout written here (IMAGE_ARCHIVE) and read back over the registry API. Everything it made is
removed at the end.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

from .daemon import build_tiny_image, daemon_answers, pull_digest, remove_images
from .layout import write_layout
from .pulling import read_back, skopeo_digest
from .pushing import push
from .workspace import PACKAGE, PUSHER, WORKSPACE, config_for, members_of, start_registry

TAGS = ("1.0", "latest")


class DemoFailed(RuntimeError):
    pass


def sample_files() -> dict[str, bytes]:
    return {"hello.txt": b"hello from the pipe demo\n", "data.bin": os.urandom(1 << 20)}


def check_same(pushed: str, **pulled: str | None) -> None:
    for how, digest in pulled.items():
        if digest is not None and digest != pushed:
            raise DemoFailed(f"the digest read back by {how} ({digest}) differs from the pushed one ({pushed})")


def without_daemon(work: Path, variables: dict[str, str], host: str, reader: tuple[str, str], why: str) -> None:
    print(f"== {why}: writing a small OCI image layout (demo/layout.py)")
    layout = write_layout(work / "layout", sample_files(), tag=TAGS[0])
    print(f"== pushing it with the pipe: IMAGE_ARCHIVE={layout.path} TAGS='{' '.join(TAGS)}'", flush=True)
    pushed = push({**variables, "IMAGE_ARCHIVE": str(layout.path)}, work / "shared")["digest"]
    print(f"== reading {WORKSPACE}/{PACKAGE}:{TAGS[0]} back over the API as {reader[0]}, every digest checked")
    pulled = read_back(f"http://{host}", f"{WORKSPACE}/{PACKAGE}", TAGS[0], reader)
    if pulled.blobs != tuple(b.digest for b in layout.blobs):
        raise DemoFailed(f"the registry's manifest names {pulled.blobs}, the layout {layout.blobs}")
    by_skopeo = skopeo_digest(host, f"{WORKSPACE}/{PACKAGE}", TAGS[0], reader)
    print(f"   written digest: {layout.manifest.digest}")
    print(f"   pushed digest:  {pushed}")
    print(f"   pulled digest:  {pulled.manifest_digest} (manifest and {len(pulled.blobs)} blobs)")
    print(f"   skopeo copy:    {by_skopeo}" if by_skopeo else "   skopeo copy:    skipped (skopeo is not installed)")
    check_same(pushed, layout=layout.manifest.digest, api=pulled.manifest_digest, skopeo=by_skopeo)
    print(f"== demo passed: the image read back is the image pushed ({pushed})")
    print("   With a Docker daemon, `make demo` also shows the other path: an image from `docker build`, "
          "pushed from the daemon, pulled with `docker pull`.")


def with_daemon(work: Path, variables: dict[str, str], host: str, reader: tuple[str, str]) -> None:
    local = f"demo-app:{secrets.token_hex(4)}"
    repository = f"{host}/{WORKSPACE}/{PACKAGE}"
    print(f"== building {local} offline with docker (FROM scratch, files from a build context)")
    build_tiny_image(local, work / "context", sample_files())
    try:
        print(f"== pushing it with the pipe from the daemon: IMAGE_NAME={local} TAGS='{' '.join(TAGS)}'", flush=True)
        pushed = push({**variables, "IMAGE_NAME": local}, work / "shared")["digest"]
        print(f"== pulling {repository}:{TAGS[0]} back with docker pull")
        pulled = pull_digest(f"{repository}:{TAGS[0]}", repository, *reader, work / "docker-config")
    finally:
        remove_images(local, f"{repository}:{TAGS[0]}")
    print(f"   pushed digest: {pushed}")
    print(f"   pulled digest: {pulled}")
    check_same(pushed, docker_pull=pulled)
    print(f"== demo passed: the image pulled back is the image pushed ({pulled})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--no-daemon", action="store_true",
                        help="push an OCI layout written here even when a Docker daemon answers")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="pipe-demo-"))
    registry = None
    try:
        config = config_for(work)
        tokens = {m.name: m.token for m in members_of(config)}
        registry = start_registry(work, config)
        print(f"== the embedded registry listens on {registry.url} (workspace {WORKSPACE}, package {PACKAGE})")
        variables = {"IMAGE_NAME": PACKAGE, "TAGS": " ".join(TAGS), "WORKSPACE": WORKSPACE, "REGISTRY": registry.host,
                     "BITBUCKET_PACKAGES_USERNAME": PUSHER, "BITBUCKET_PACKAGES_TOKEN": tokens[PUSHER]}
        reader = ("reader", tokens["reader"])
        if args.no_daemon:
            without_daemon(work, variables, registry.host, reader, "--no-daemon")
        elif daemon_answers():
            with_daemon(work, variables, registry.host, reader)
        else:
            without_daemon(work, variables, registry.host, reader, "no Docker daemon answers `docker info`")
        return 0
    except KeyboardInterrupt:
        print("demo: interrupted; removing what it made", file=sys.stderr)
        return 130
    # DemoFailed, PushFailed, ReadBackFailed and DockerFailed are RuntimeErrors, as is a registry that does
    # not start; the others are a tool or a connection failing on the way.
    except (RuntimeError, OSError, subprocess.SubprocessError, requests.RequestException) as exc:
        print(f"demo: FAILED: {exc}", file=sys.stderr)
        if registry is not None and registry.log().strip():
            print("--- the registry's log (last lines)\n" + "\n".join(registry.log().splitlines()[-15:]),
                  file=sys.stderr)
        return 1
    finally:
        if registry is not None:
            registry.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
