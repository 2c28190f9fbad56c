"""Build small test images offline: FROM scratch with random files from a build context."""
from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path


def build_image(tag: str, context: Path, layers: list[int] | None = None, base: str = "scratch") -> str:
    """Build `tag` with one layer per size in `layers` (random bytes, so every build is unique)."""
    layers = layers or [64 * 1024]
    context.mkdir(parents=True, exist_ok=True)
    lines = [f"FROM {base}"]
    for i, size in enumerate(layers):
        (context / f"layer{i}.bin").write_bytes(os.urandom(size) if size else b"")
        lines.append(f"COPY layer{i}.bin /layer{i}.bin")
    lines.append(f'LABEL test.nonce="{secrets.token_hex(8)}"')
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True, timeout=300)
    return tag


def remove_image(*refs: str) -> None:
    subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, timeout=120)
