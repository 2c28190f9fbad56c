"""`make serve` (`python -m demo.serve`): the emulator on loopback with a ready sample workspace.

The package has a few tags pushed by the pipe (OCI layouts written here, no daemon needed), and the
workspace a member of each role. It prints the address of the pages, the usernames and tokens to log
in with, and the command lines that push to it, then runs until Ctrl-C (or SIGTERM). What it made is
removed then, unless it was given `--root DIR`: that directory is kept, and used again next time.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from harness.registry_process import RegistryProcess

from .layout import write_layout
from .pushing import PushFailed, push
from .workspace import PACKAGE, PUSHER, REPOSITORY, WORKSPACE, Member, config_for, members_of, start_registry

# Each release of the sample app: its tags, and the files of its one layer.
RELEASES = (
    ("1.0", b"release 1.0 of the sample app\n"),
    ("1.1 latest", b"release 1.1 of the sample app, with a fix\n"),
)


class Stop(Exception):
    """SIGINT (Ctrl-C) or SIGTERM."""


def push_samples(directory: Path, registry: RegistryProcess, pusher: Member) -> list[str]:
    """Push each release with the pipe from an OCI layout; the tags pushed."""
    pushed: list[str] = []
    for i, (tags, text) in enumerate(RELEASES):
        layout_dir = directory / "layouts" / f"release-{i}"
        shutil.rmtree(layout_dir, ignore_errors=True)
        layout = write_layout(layout_dir, {"hello.txt": text}, tag=tags.split()[0])
        output = push({"IMAGE_NAME": PACKAGE, "IMAGE_ARCHIVE": str(layout.path), "TAGS": tags,
                       "WORKSPACE": WORKSPACE, "REGISTRY": registry.host,
                       "BITBUCKET_PACKAGES_USERNAME": pusher.name, "BITBUCKET_PACKAGES_TOKEN": pusher.token},
                      directory / "shared", quiet=True)
        print(f"   pushed {WORKSPACE}/{PACKAGE} {tags} ({output['digest'][:19]}...) with the pipe", flush=True)
        pushed += tags.split()
    return pushed


def banner(registry: RegistryProcess, members: list[Member], tags: list[str], directory: Path, kept: bool) -> str:
    host, writer = registry.host, next(m for m in members if m.name == PUSHER)
    rows = "\n".join(f"  {m.name:<8} {m.token}  {m.role} on repository {REPOSITORY}" for m in members)
    return f"""
The emulator of crg.apkg.io is running. Its pages: {registry.url}/ui/
Log in there with a username and its token:
{rows}
Workspace {WORKSPACE}, package {PACKAGE} (linked to {REPOSITORY}), tags {' '.join(tags)}.

Push to it with docker (127.0.0.1 needs no TLS):
  docker login {host} -u {writer.name}    # password: {writer.name}'s token
  docker tag my-app:dev {host}/{WORKSPACE}/{PACKAGE}:dev && docker push {host}/{WORKSPACE}/{PACKAGE}:dev
Or with the pipe, from a checkout (an image the daemon holds, or IMAGE_ARCHIVE=<a layout or tar>):
  IMAGE_NAME={PACKAGE}:dev WORKSPACE={WORKSPACE} REGISTRY={host} BITBUCKET_PACKAGES_USERNAME={writer.name} \\
  BITBUCKET_PACKAGES_TOKEN={writer.token} .venv/bin/python -m pipe

Data: {directory} ({'kept at exit' if kept else 'removed at exit'}). Press Ctrl-C to stop.
"""


def _stop(signum: int, frame: object) -> None:
    raise Stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="keep the registry's data here (made if missing, kept at exit)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    args = parser.parse_args(argv)
    # Both set here: a shell starting us in the background would have SIGINT ignored otherwise.
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    kept = args.root is not None
    directory = args.root.resolve() if kept else Path(tempfile.mkdtemp(prefix="pipe-serve-"))
    directory.mkdir(parents=True, exist_ok=True)
    registry = None
    try:
        config = config_for(directory)
        members = members_of(config)
        registry = start_registry(directory, config, args.port)
        print(f"== the emulator listens on {registry.url}; pushing the sample package with the pipe", flush=True)
        tags = push_samples(directory, registry, next(m for m in members if m.name == PUSHER))
        print(banner(registry, members, tags, directory, kept), flush=True)
        while registry.proc is not None and registry.proc.poll() is None:
            time.sleep(0.5)
        print(f"serve: the registry stopped by itself (exit {registry.proc.returncode}); its log: "
              f"{registry.log_path}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Stop):
        print("\n== stopping the emulator", flush=True)
        return 0
    except (PushFailed, RuntimeError) as exc:
        print(f"serve: FAILED: {exc}", file=sys.stderr)
        return 1
    finally:
        if registry is not None:
            registry.stop()
        if not kept:
            shutil.rmtree(directory, ignore_errors=True)
            print(f"   removed {directory}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
