"""Image archives made with the real tools, for the pipe's IMAGE_ARCHIVE source, plus broken ones.

    ref = build_runnable_image("app:1", tmp / "ctx", [64 << 10], "hi")   # docker run --rm app:1 -> hi
    docker_save(ref, tmp / "a.tar", gzip=True)          # docker save (| gzip)
    skopeo_oci_layout(ref, tmp / "oci")                 # skopeo copy docker-daemon:REF oci:DIR:latest
    buildah_multiplatform(tmp / "multi", "oci-layout")  # linux/amd64 + linux/arm64 index, buildah manifest push
    two_platform_index(amd64_layout, other_layout, tmp / "idx")   # the same, assembled by hand from two layouts

Every maker returns an `Archive` read back from what the tool wrote (never what we asked for), so a
test can compare the pipe's output with it. Bad inputs copy a good archive first and break the copy.
Every subprocess has a timeout; nothing touches the network.
"""
from __future__ import annotations

import gzip as gzip_module
import hashlib
import io
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")  # Debian's busybox-static; the dynamic `busybox` package would not run FROM scratch
KINDS = ("docker-archive", "docker-archive-gzip", "oci-layout", "oci-archive")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
REF_NAME = "org.opencontainers.image.ref.name"
OVERSIZED_LAYER = 34 * 1024 ** 3  # above the pipe's MAX_BLOB_BYTES (32 GiB)
TIMEOUT = 120  # seconds, for every tool call on these small images


@dataclass(frozen=True)
class StoredImage:
    """One single-platform image inside an archive."""
    ref_name: str | None              # OCI ref.name of the entry it belongs to, or the docker RepoTag (first)
    platform: str                     # "linux/amd64", from the index's platform field or else the config
    manifest_digest: str | None       # None in docker-archives: they store no manifest
    config_digest: str                # sha256 of the config bytes as stored (= image ID for docker save)
    layer_digests: tuple[str, ...]    # as stored: gzip blobs in OCI from skopeo/buildah, plain tars in docker-archives
    layer_media_types: tuple[str, ...]
    layer_sizes: tuple[int, ...]
    diff_ids: tuple[str, ...]         # from the config: digests of the uncompressed layer tars


@dataclass(frozen=True)
class Archive:
    path: Path
    kind: str                         # one of KINDS
    top_digest: str | None            # what index.json's (first) entry points at; None for docker-archives
    platforms: tuple[str, ...]        # distinct, in stored order
    ref_names: tuple[str, ...]        # index.json ref.name annotations, or docker RepoTags
    images: tuple[StoredImage, ...]   # per platform of an index, per entry of several-image archives
    top_digests: tuple[str | None, ...] = ()  # one per ref name
    top_media_type: str | None = None  # OCI manifest or index; None for docker-archives

    @property
    def config_digest(self) -> str:
        return self.images[0].config_digest

    @property
    def layer_digests(self) -> tuple[str, ...]:
        return self.images[0].layer_digests

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return self.images[0].diff_ids

    def image(self, platform: str) -> StoredImage:
        for image in self.images:
            if image.platform == platform:
                return image
        raise KeyError(f"no {platform} image in {self.path} (has {', '.join(self.platforms)})")


# --- running tools ---------------------------------------------------------------------------------------

def _run_bytes(cmd: list[str], timeout: float = TIMEOUT, env: dict[str, str] | None = None) -> bytes:
    """Run a tool; raise with its stderr (tests fail loudly, never skip)."""
    if shutil.which(cmd[0]) is None:
        raise RuntimeError(f"{cmd[0]} is not installed: run `bash .ci/run` (it installs the test tools)")
    r = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    if r.returncode != 0:
        err = r.stderr.decode(errors="replace").strip()[-2000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {err}")
    return r.stdout


def _run(cmd: list[str], timeout: float = TIMEOUT, env: dict[str, str] | None = None) -> str:
    return _run_bytes(cmd, timeout, env).decode(errors="replace")


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _hash_stream(f) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    while chunk := f.read(1 << 20):
        sha.update(chunk)
        size += len(chunk)
    return "sha256:" + sha.hexdigest(), size


def _is_static_elf(path: Path) -> bool:
    """No PT_INTERP program header: runs without a dynamic loader (64-bit little-endian ELF)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF":
            return False
        phoff, phentsize, phnum = (int.from_bytes(head[32:40], "little"), int.from_bytes(head[54:56], "little"),
                                   int.from_bytes(head[56:58], "little"))
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(int.from_bytes(table[i:i + 4], "little") != 3 for i in range(0, len(table), phentsize))


def require_busybox() -> Path:
    if not BUSYBOX.is_file() or not _is_static_elf(BUSYBOX):
        raise RuntimeError(f"{BUSYBOX} is missing or not static: apt-get install busybox-static (`bash .ci/run`)")
    return BUSYBOX


# --- a docker image that runs ----------------------------------------------------------------------------

def build_runnable_image(tag: str, context: Path, layers: list[int], message: str) -> str:
    """`docker build` FROM scratch: static busybox + one random layer per size; `docker run --rm tag` prints message."""
    context.mkdir(parents=True, exist_ok=True)
    # copy2 keeps the mtime, so the busybox layer is byte-identical in every image (a shared base layer)
    shutil.copy2(require_busybox(), context / "busybox")
    lines = ["FROM scratch", "COPY busybox /bin/busybox"]
    for i, size in enumerate(layers):
        (context / f"layer{i}.bin").write_bytes(os.urandom(size))
        lines.append(f"COPY layer{i}.bin /layer{i}.bin")
    lines += [f'LABEL test.nonce="{secrets.token_hex(8)}"',  # unique even with no random layers
              "CMD " + json.dumps(["/bin/busybox", "echo", message])]
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    _run(["docker", "build", "-q", "-t", tag, str(context)], timeout=300)
    out = _run(["docker", "run", "--rm", "--network", "none", tag])
    if out.strip() != message:
        raise RuntimeError(f"docker run {tag} printed {out!r}, expected {message!r}")
    return tag


def run_image(ref: str) -> str:
    """What `docker run --rm ref` prints (stripped)."""
    return _run(["docker", "run", "--rm", "--network", "none", ref]).strip()


def remove_images(*refs: str) -> None:
    if refs:
        subprocess.run(["docker", "rmi", "-f", *refs], capture_output=True, timeout=TIMEOUT)


# --- reading what a tool wrote ---------------------------------------------------------------------------

class _Blobs:
    """Files of an OCI layout, from its directory or its tar."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tar = tarfile.open(path) if path.is_file() else None

    def read(self, name: str) -> bytes:
        if self.tar is None:
            return (self.path / name).read_bytes()
        names = set(self.tar.getnames())
        member = name if name in names else "./" + name  # tars made with `tar -C dir -cf - .` say ./index.json
        f = self.tar.extractfile(member)
        if f is None:
            raise KeyError(name)
        return f.read()

    def blob(self, digest: str) -> bytes:
        return self.read("blobs/" + digest.replace(":", "/", 1))

    def close(self) -> None:
        if self.tar is not None:
            self.tar.close()


def _platform(p: dict) -> str:
    return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


def _oci_image(blobs: _Blobs, digest: str, ref_name: str | None, platform: dict | None) -> StoredImage:
    manifest = json.loads(blobs.blob(digest))
    config = json.loads(blobs.blob(manifest["config"]["digest"]))
    layers = manifest["layers"]
    return StoredImage(ref_name, _platform(platform or config), digest, manifest["config"]["digest"],
                       tuple(d["digest"] for d in layers), tuple(d["mediaType"] for d in layers),
                       tuple(d["size"] for d in layers), tuple(config["rootfs"]["diff_ids"]))


def read_oci(path: Path) -> Archive:
    """An OCI layout directory, or an OCI archive (its tar), as index.json describes it."""
    blobs = _Blobs(path)
    try:
        entries = json.loads(blobs.read("index.json"))["manifests"]
        images: list[StoredImage] = []
        for entry in entries:
            name = entry.get("annotations", {}).get(REF_NAME)
            if entry["mediaType"] in (OCI_INDEX, DOCKER_LIST):
                for child in json.loads(blobs.blob(entry["digest"]))["manifests"]:
                    images.append(_oci_image(blobs, child["digest"], name, child.get("platform")))
            else:
                images.append(_oci_image(blobs, entry["digest"], name, None))
    finally:
        blobs.close()
    names = tuple(e.get("annotations", {}).get(REF_NAME) for e in entries)
    return Archive(path, "oci-archive" if path.is_file() else "oci-layout", entries[0]["digest"],
                   tuple(dict.fromkeys(i.platform for i in images)), tuple(n for n in names if n), tuple(images),
                   tuple(e["digest"] for e in entries), entries[0]["mediaType"])


def read_docker_archive(path: Path) -> Archive:
    """A docker-archive (plain or gzip) as its manifest.json describes it; layers hashed as stored."""
    images: list[StoredImage] = []
    tags: list[str] = []
    with tarfile.open(path, "r:*") as tar:
        for entry in json.load(tar.extractfile("manifest.json")):
            config_bytes = tar.extractfile(entry["Config"]).read()
            config = json.loads(config_bytes)
            digests, kinds, sizes = [], [], []
            for name in entry["Layers"]:
                f = tar.extractfile(name)  # follows symlinks (skopeo's legacy <v1-id>/layer.tar names)
                head = f.read(2)
                f.seek(0)
                digest, size = _hash_stream(f)
                digests.append(digest)
                sizes.append(size)
                # docker-archives carry no media types: the one a pusher would declare for these bytes
                kinds.append("application/vnd.docker.image.rootfs.diff.tar" + (".gzip" if head == b"\x1f\x8b" else ""))
            repo_tags = entry.get("RepoTags") or []
            tags += repo_tags
            images.append(StoredImage(repo_tags[0] if repo_tags else None, _platform(config), None,
                                      _sha256(config_bytes), tuple(digests), tuple(kinds), tuple(sizes),
                                      tuple(config["rootfs"]["diff_ids"])))
    gz = path.read_bytes()[:2] == b"\x1f\x8b"
    return Archive(path, "docker-archive-gzip" if gz else "docker-archive", None,
                   tuple(dict.fromkeys(i.platform for i in images)), tuple(tags), tuple(images), (None,) * len(tags))


def read_archive(path: Path) -> Archive:
    if path.is_dir() or _is_oci_tar(path):
        return read_oci(path)
    return read_docker_archive(path)


def _is_oci_tar(path: Path) -> bool:
    try:
        with tarfile.open(path) as tar:  # a gzip docker-archive opens too, but has no oci-layout member
            return "oci-layout" in tar.getnames()
    except tarfile.TarError:
        return False


# --- makers with the real tools --------------------------------------------------------------------------

def docker_save(ref: str, dest: Path, gzip: bool = False) -> Archive:
    """`docker save ref` (docker 20.10: legacy layout, <v1-id>/layer.tar), gzipped by Python when asked."""
    return docker_save_several([ref], dest, gzip)


def docker_save_several(refs: list[str], dest: Path, gzip: bool = False) -> Archive:
    """`docker save a b ...`: one manifest.json entry per image, shared layers stored once."""
    plain = dest.with_name(dest.name + ".plain") if gzip else dest
    _run(["docker", "save", "-o", str(plain), *refs])
    if gzip:
        with open(plain, "rb") as src, gzip_module.open(dest, "wb", compresslevel=1) as out:
            shutil.copyfileobj(src, out, 1 << 20)
        plain.unlink()
    return read_docker_archive(dest)


def skopeo_oci_layout(ref: str, dest_dir: Path, ref_name: str = "latest") -> Archive:
    """`skopeo copy docker-daemon:REF oci:DIR:NAME` (layers gzipped, config rewritten as OCI)."""
    _run(["skopeo", "copy", "-q", f"docker-daemon:{ref}", f"oci:{dest_dir}:{ref_name}"])
    return read_oci(dest_dir)


def skopeo_oci_layout_several(refs: dict[str, str], dest_dir: Path) -> Archive:
    """{ref_name: docker ref}: one skopeo copy each into the same layout; index.json gets one entry per name."""
    for name, ref in refs.items():
        _run(["skopeo", "copy", "-q", f"docker-daemon:{ref}", f"oci:{dest_dir}:{name}"])
    return read_oci(dest_dir)


def skopeo_oci_archive(ref: str, dest_tar: Path, ref_name: str = "latest") -> Archive:
    """`skopeo copy docker-daemon:REF oci-archive:FILE:NAME`: an OCI layout in a plain tar."""
    _run(["skopeo", "copy", "-q", f"docker-daemon:{ref}", f"oci-archive:{dest_tar}:{ref_name}"])
    return read_oci(dest_tar)


def skopeo_docker_archive(ref: str, dest_tar: Path) -> Archive:
    """`skopeo copy docker-daemon:REF docker-archive:FILE:REF`: <diff-id>.tar layers, symlinked legacy dirs."""
    _run(["skopeo", "copy", "-q", f"docker-daemon:{ref}", f"docker-archive:{dest_tar}:{ref}"])
    return read_docker_archive(dest_tar)


def buildah_multiplatform(dest: Path, kind: str = "oci-layout", ref_name: str = "latest", message: str = "hello",
                          layer_size: int = 32 * 1024, scratch: Path | None = None) -> Archive:
    """A linux/amd64 + linux/arm64 index from `buildah manifest push --all`, as an oci: dir or oci-archive: file.

    Both images are FROM scratch with COPY only (no RUN, so no emulation): the amd64 busybox (a layer both
    platforms share), a platform file and random bytes (a layer each). The amd64 one runs and echoes message.
    buildah keeps everything in a private --root/--runroot (vfs, chroot isolation) removed afterwards.
    """
    if kind not in ("oci-layout", "oci-archive"):
        raise ValueError(f"buildah pushes an index as oci-layout or oci-archive, not {kind}")
    with tempfile.TemporaryDirectory(prefix="buildah-", dir=scratch) as tmp:
        work = Path(tmp)
        env = {**os.environ, "TMPDIR": str(work), "BUILDAH_ISOLATION": "chroot"}
        buildah = ["buildah", "--root", str(work / "root"), "--runroot", str(work / "run"), "--storage-driver", "vfs"]
        ctx = work / "ctx"
        ctx.mkdir()
        shutil.copy2(require_busybox(), ctx / "busybox")
        (ctx / "Containerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\nCOPY platform.txt /platform.txt\nCOPY random.bin /random.bin\n"
            "CMD " + json.dumps(["/bin/busybox", "echo", message]) + "\n")
        _run(buildah + ["manifest", "create", "fixture-list"], env=env)
        for platform in ("linux/amd64", "linux/arm64"):
            (ctx / "platform.txt").write_text(f"{platform} {secrets.token_hex(8)}\n")
            (ctx / "random.bin").write_bytes(os.urandom(layer_size))
            image = "localhost/fixture-" + platform.replace("/", "-")
            _run(buildah + ["build", "-q", "--layers", "--isolation", "chroot", "--platform", platform,
                            "-t", image, "-f", str(ctx / "Containerfile"), str(ctx)], timeout=300, env=env)
            _run(buildah + ["manifest", "add", "fixture-list", f"containers-storage:{image}"], env=env)
        transport = "oci" if kind == "oci-layout" else "oci-archive"
        _run(buildah + ["manifest", "push", "-q", "--all", "fixture-list", f"{transport}:{dest}:{ref_name}"], env=env)
    return read_oci(dest)


def two_platform_index(amd64: Archive, other: Archive, dest: Path, ref_name: str = "latest",
                       architecture: str = "arm64", variant: str | None = None) -> Archive:
    """A two-platform OCI index assembled from two single-image OCI layouts (e.g. from skopeo_oci_layout).

    `other`'s config is rewritten to `architecture` (so its config and manifest digests change); every blob
    of both lands in a new layout whose index.json points at the index under `ref_name`.
    """
    blobs_dir = dest / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True)
    descriptors = []
    for source, arch in ((amd64, None), (other, architecture)):
        image = source.images[0]
        for digest in image.layer_digests:
            _copy_blob(source.path, digest, blobs_dir)
        manifest_bytes = _layout_blob(source.path, image.manifest_digest)
        config_bytes = _layout_blob(source.path, image.config_digest)
        config = json.loads(config_bytes)
        if arch:  # rewrite, rehash, point the manifest at the new config; else keep the tool's bytes
            config["architecture"] = arch
            if variant:
                config["variant"] = variant
            config_bytes = _json(config)
            manifest = json.loads(manifest_bytes)
            manifest["config"].update(digest=_sha256(config_bytes), size=len(config_bytes))
            manifest_bytes = _json(manifest)
        _write_blob(blobs_dir, config_bytes)
        platform = {"architecture": config["architecture"], "os": config["os"]}
        if config.get("variant"):
            platform["variant"] = config["variant"]
        descriptors.append({"mediaType": OCI_MANIFEST, "digest": _write_blob(blobs_dir, manifest_bytes),
                            "size": len(manifest_bytes), "platform": platform})
    index = _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
    _write_layout_index(dest, {"mediaType": OCI_INDEX, "digest": _write_blob(blobs_dir, index), "size": len(index),
                               "annotations": {REF_NAME: ref_name}})
    return read_oci(dest)


def skopeo_accepts(archive: Archive, scratch: Path, ref_name: str | None = None) -> tuple[str, Path]:
    """`skopeo inspect --raw` (returns its bytes' digest) and `skopeo copy --all` into scratch/copy (returned)."""
    transport = "oci" if archive.kind == "oci-layout" else "oci-archive"
    source = f"{transport}:{archive.path}:{ref_name or archive.ref_names[0]}"
    raw = _run_bytes(["skopeo", "inspect", "--raw", source])  # bytes: the digest is of exactly these
    copy = scratch / "copy"
    _run(["skopeo", "copy", "-q", "--all", source, f"oci:{copy}:copied"])
    return _sha256(raw), copy


# --- OCI layout writing ----------------------------------------------------------------------------------

def _json(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _write_blob(blobs_dir: Path, data: bytes) -> str:
    digest = _sha256(data)
    (blobs_dir / digest.split(":", 1)[1]).write_bytes(data)
    return digest


def _blob_path(layout: Path, digest: str) -> Path:
    return layout / "blobs" / digest.replace(":", "/", 1)


def _layout_blob(layout: Path, digest: str | None) -> bytes:
    if layout.is_file() or digest is None:
        raise ValueError("needs an OCI layout directory with a manifest")
    return _blob_path(layout, digest).read_bytes()


def _copy_blob(layout: Path, digest: str, blobs_dir: Path) -> None:
    target = blobs_dir / digest.split(":", 1)[1]
    if not target.exists():  # shared between the two images (e.g. the busybox layer)
        shutil.copyfile(_blob_path(layout, digest), target)


def _write_layout_index(layout: Path, *entries: dict) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (layout / "index.json").write_bytes(_json({"schemaVersion": 2, "manifests": list(entries)}))


# --- bad inputs for the pipe's error paths (each copies a good one first, returns the path) ---------------

def _copy(source: Path, dest: Path) -> Path:
    if source.is_dir():
        shutil.copytree(source, dest)
    else:
        shutil.copyfile(source, dest)
    return dest


def truncated_archive(source: Path, dest: Path) -> Path:
    """A tar cut in the middle of its largest member's data; a gzip file cut at half its length."""
    data = source.read_bytes()
    if data[:2] == b"\x1f\x8b":
        cut = len(data) // 2
    else:
        with tarfile.open(source) as tar:
            largest = max(tar.getmembers(), key=lambda m: m.size)
        cut = largest.offset_data + largest.size // 2
    dest.write_bytes(data[:cut])
    return dest


def layout_without_blob(layout: Archive, dest: Path, digest: str | None = None) -> Path:
    """The layout with one blob deleted (default: the first image's last layer)."""
    _copy(layout.path, dest)
    _blob_path(dest, digest or layout.layer_digests[-1]).unlink()
    return dest


def layout_with_corrupt_blob(layout: Archive, dest: Path, digest: str | None = None) -> Path:
    """One blob (default: the last layer) with bytes flipped in the middle: same size, wrong digest."""
    _copy(layout.path, dest)
    path = _blob_path(dest, digest or layout.layer_digests[-1])
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        chunk = f.read(16)
        f.seek(-len(chunk), os.SEEK_CUR)
        f.write(bytes(b ^ 0xFF for b in chunk))
    return dest


def layout_with_truncated_blob(layout: Archive, dest: Path, digest: str | None = None) -> Path:
    """One blob (default: the last layer) cut to half its size: shorter than its descriptor says."""
    _copy(layout.path, dest)
    path = _blob_path(dest, digest or layout.layer_digests[-1])
    os.truncate(path, path.stat().st_size // 2)
    return dest


def tar_with_member(source: Path, dest: Path, name: str = "../evil", linkname: str | None = None) -> Path:
    """Every member of the tar `source`, first an extra one named `name` ("../evil", "/evil").

    With linkname, the extra member is a symlink to it (e.g. "/etc/passwd"); else a small regular file.
    Note skopeo's own docker-archives hold symlinks to "../<diff-id>.tar": relative links inside the tar are legal.
    """
    with tarfile.open(source, "r:*") as src, tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as out:
        extra = tarfile.TarInfo(name)  # tarfile writes the name as given: no stripping of "/" or ".."
        if linkname is not None:
            extra.type, extra.linkname = tarfile.SYMTYPE, linkname
            out.addfile(extra)
        else:
            body = b"evil\n"
            extra.size = len(body)
            out.addfile(extra, io.BytesIO(body))
        for member in src.getmembers():
            out.addfile(member, src.extractfile(member) if member.isfile() else None)
    return dest


def not_an_archive(dest: Path, kind: str = "random") -> Path:
    """A file that is no tar: 64 KiB of random bytes, or a plain text file."""
    if kind == "random":
        dest.write_bytes(os.urandom(64 * 1024))
    elif kind == "text":
        dest.write_text("this is not an image archive\n" * 20)
    else:
        raise ValueError(f"kind is random or text, not {kind}")
    return dest


def layout_with_oversized_layer(layout: Archive, dest: Path, size: int = OVERSIZED_LAYER) -> Path:
    """The layout with one more (last) layer of `size` bytes, a SPARSE file: no disk used.

    Its digest is made up (hashing 34 GiB of zeros would take minutes): the pipe must refuse on the size in
    the manifest before reading or uploading any blob. The layer's bytes (zeros) would be a valid empty tar.
    """
    _copy(layout.path, dest)
    image = layout.images[0]
    if len(layout.images) != 1 or image.manifest_digest is None:
        raise ValueError("needs a single-image OCI layout directory")
    blobs_dir = dest / "blobs" / "sha256"
    fake = _sha256(b"sparse layer " + secrets.token_bytes(16))
    with open(_blob_path(dest, fake), "wb") as f:
        f.truncate(size)
    config = json.loads(_layout_blob(dest, image.config_digest))
    config["rootfs"]["diff_ids"].append(fake)  # uncompressed media type: diff ID = blob digest
    config.setdefault("history", []).append({"created_by": "oversized sparse layer (test)"})
    config_bytes = _json(config)
    manifest = json.loads(_layout_blob(dest, image.manifest_digest))
    manifest["config"].update(digest=_write_blob(blobs_dir, config_bytes), size=len(config_bytes))
    manifest["layers"].append({"mediaType": OCI_LAYER_TAR, "digest": fake, "size": size})
    manifest_bytes = _json(manifest)
    entry = {"mediaType": OCI_MANIFEST, "digest": _write_blob(blobs_dir, manifest_bytes), "size": len(manifest_bytes),
             "annotations": {REF_NAME: layout.ref_names[0]}}
    _write_layout_index(dest, entry)  # the old manifest and config stay as unreferenced blobs (legal)
    return dest
