"""Build realistic test images fast and offline, straight into the main daemon with `docker load`.

Layers are either random bytes (incompressible) or real files (a slice of /usr, compressible like a root
filesystem). Layer tars are written once to a scratch directory (hashed on the way for the diff IDs), then
streamed into `docker load` as a docker-archive; nothing is pulled and no build context is sent.

    img = build_layered_image("bench-app:1", [RandomLayer(64 << 20), FilesLayer(128 << 20)])
    top = build_image_on_base("bench-app:2", img.ref, extra_layer_size=8 << 20)  # all but the top shared
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

FILES_ROOT = Path("/usr")
EPOCH = 1_700_000_000  # fixed mtimes: the same files give the same layer bytes


@dataclass(frozen=True)
class RandomLayer:
    """One file of `size` random bytes."""
    size: int


@dataclass(frozen=True)
class FilesLayer:
    """About `size` bytes of real files from /usr, slice number `slice` (slices never overlap).

    `unique` adds a small random file so the layer's digest is new on every build; without it two
    builds of the same slice give byte-identical layers (useful to make images share a layer).
    """
    size: int
    slice: int = 0
    unique: bool = True


Layer = Union[RandomLayer, FilesLayer, int]  # an int is RandomLayer(int)


@dataclass(frozen=True)
class BuiltImage:
    ref: str
    image_id: str
    diff_ids: tuple[str, ...]
    layer_sizes: tuple[int, ...]  # uncompressed tar sizes

    @property
    def size(self) -> int:
        return sum(self.layer_sizes)


class _HashingWriter(io.RawIOBase):
    def __init__(self, raw: io.BufferedWriter) -> None:
        self.raw, self.sha, self.size = raw, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.sha.update(data)
        self.size += len(data)
        return self.raw.write(data)


def _file_slices(size: int, index: int) -> Iterator[Path]:
    """Regular files of /usr in a stable order, cut into slices of 90-100 % of `size` bytes; yield slice `index`.

    A file that does not fit a slice filled under 90 % is left out; one that does not fit a fuller slice
    starts the next one.
    """
    current, filled = 0, 0
    for dirpath, dirnames, filenames in os.walk(FILES_ROOT):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                if path.is_symlink() or not path.is_file():
                    continue
                length = _tar_cost(str(path), path.stat().st_size)
            except OSError:
                continue
            if filled + length > size:
                if filled < 0.9 * size or length > size:
                    continue
                current, filled = current + 1, 0
                if current > index:
                    return
            if current == index:
                yield path
            filled += length
    if current < index or filled < 0.9 * size:
        raise ValueError(f"{FILES_ROOT} holds fewer than {index + 1} slices of {size} bytes")


def _tar_cost(name: str, size: int) -> int:
    """Bytes a file takes in a tar: a 512-byte header (plus a PAX header for a long name) and padded data."""
    return 512 + (1024 if len(name) > 99 else 0) + (size + 511) // 512 * 512


def _tarinfo(name: str, size: int, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, EPOCH
    return info


def _write_layer(layer: Layer, path: Path) -> tuple[str, int]:
    """Write one layer tar to `path`; return its diff ID and size."""
    if isinstance(layer, int):
        layer = RandomLayer(layer)
    with open(path, "wb") as raw:
        hashing = _HashingWriter(raw)
        with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            if isinstance(layer, RandomLayer):
                tar.addfile(_tarinfo(f"random-{secrets.token_hex(6)}.bin", layer.size),
                            _RandomReader(layer.size))
            else:
                if layer.unique:
                    nonce = secrets.token_hex(16).encode()
                    tar.addfile(_tarinfo(f"nonce-{nonce[:12].decode()}", len(nonce)), io.BytesIO(nonce))
                for src in _file_slices(layer.size, layer.slice):
                    info = tar.gettarinfo(str(src), arcname=str(src).lstrip("/"))
                    info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "root", "root"
                    with open(src, "rb") as f:
                        tar.addfile(info, f)
    return "sha256:" + hashing.sha.hexdigest(), hashing.size


class _RandomReader(io.RawIOBase):
    """`size` random bytes, read in pieces (never held whole)."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self.left if n is None or n < 0 else min(n, self.left)
        self.left -= n
        return os.urandom(n)


def build_layered_image(tag: str, layers: list[Layer], scratch: Path | None = None,
                        docker_host: str | None = None) -> BuiltImage:
    """Load a new image `tag` (FROM scratch, one layer per spec) into the daemon; unique on every call."""
    if not layers:
        raise ValueError("an image needs at least one layer")
    with tempfile.TemporaryDirectory(prefix="layered-", dir=scratch) as tmp:
        work = Path(tmp)
        diff_ids, sizes = [], []
        for i, layer in enumerate(layers):
            diff_id, size = _write_layer(layer, work / f"layer{i}.tar")
            diff_ids.append(diff_id)
            sizes.append(size)
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"test.nonce": secrets.token_hex(8)}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": f"test layer {i}"}
                        for i in range(len(layers))],
        }, separators=(",", ":")).encode()
        config_name = hashlib.sha256(config).hexdigest() + ".json"
        manifest = json.dumps([{"Config": config_name, "RepoTags": [tag],
                                "Layers": [f"layer{i}/layer.tar" for i in range(len(layers))]}]).encode()
        _docker_load(work, config_name, config, manifest, len(layers), docker_host)
    image_id = "sha256:" + config_name[:-5]
    return BuiltImage(tag, image_id, tuple(diff_ids), tuple(sizes))


def _docker_load(work: Path, config_name: str, config: bytes, manifest: bytes, count: int,
                 docker_host: str | None) -> None:
    cmd = ["docker"] + (["-H", docker_host] if docker_host else []) + ["load", "-q"]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    try:
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            tar.addfile(_tarinfo(config_name, len(config)), io.BytesIO(config))
            for i in range(count):
                tar.add(str(work / f"layer{i}.tar"), arcname=f"layer{i}/layer.tar")
            tar.addfile(_tarinfo("manifest.json", len(manifest)), io.BytesIO(manifest))
    except BrokenPipeError:
        pass  # docker load died: its stderr says why
    finally:
        proc.stdin.close()
    err = proc.stderr.read()  # small; docker load writes its complaint and exits
    if proc.wait(timeout=900) != 0:
        raise RuntimeError(f"docker load failed: {err.decode(errors='replace')}")


def build_image_on_base(tag: str, base: str, extra_layer_size: int, context: Path | None = None) -> BuiltImage:
    """`tag` = every layer of the local image `base` plus one new random top layer (docker build FROM base)."""
    with tempfile.TemporaryDirectory(prefix="on-base-", dir=context) as tmp:
        ctx = Path(tmp)
        with open(ctx / "top.bin", "wb") as f:
            reader = _RandomReader(extra_layer_size)
            while piece := reader.read(1 << 20):
                f.write(piece)
        (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY top.bin /top-{secrets.token_hex(6)}.bin\n")
        r = subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"docker build of {tag} on {base} failed: {r.stderr}")
    return inspect_image(tag)


def inspect_image(ref: str, docker_host: str | None = None) -> BuiltImage:
    cmd = ["docker"] + (["-H", docker_host] if docker_host else []) + ["image", "inspect", ref]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"no image {ref}: {r.stderr.strip()}")
    info = json.loads(r.stdout)[0]
    diff_ids = tuple(info["RootFS"]["Layers"])
    return BuiltImage(ref, info["Id"], diff_ids, ())
