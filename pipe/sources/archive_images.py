"""Which image an archive holds, and what it is made of, read from its small files only.

Two kinds of archive, told apart by their files:
- a docker-archive (`manifest.json`: per image its config, its tags and its layer files, in order),
  as `docker save` (both layouts), `skopeo copy … docker-archive:` and `podman save` write it;
- an OCI image layout (`oci-layout`, `index.json`, `blobs/`), as a directory or a tar, as skopeo,
  buildah and BuildKit write it. What index.json points at may be one image's manifest or an index
  of several platforms; its blobs are pushed as they are stored, so their digests stay valid.
A tar with both (docker >= 25's save) is read as a docker-archive when its layers are uncompressed,
so the push matches `docker push` of the same image; as an OCI layout when they are compressed.

Every blob read here (index, manifest, config) must hash to its digest; the layer blobs are only
checked for presence and size here, and hashed while they are uploaded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import PipeFailure, capital
from ..oci import (
    IMAGE_NAME_ANNOTATION,
    REF_NAME,
    UNCOMPRESSED_LAYERS,
    BadDescriptor,
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    ManifestError,
    NotAnObject,
    NotJSON,
    Platform,
    digest_of,
    is_index,
    parse,
    platform_matches,
)
from .archive_files import ArchiveFiles, safe_name
from .image import LocalImage
from .index_children import Child, select_children

MAX_METADATA = 8 * 1024 * 1024


@dataclass(frozen=True)
class DockerArchiveImage:
    """One image of a docker-archive: uncompressed layers, compressed by the engine."""

    image: LocalImage
    config: bytes
    layer_paths: tuple[str, ...]  # the member of each position
    names: tuple[str, ...]


@dataclass(frozen=True)
class LayoutLayer:
    blob: Descriptor  # as the manifest names it
    path: str

    @property
    def raw(self) -> bool:
        """An uncompressed tar: the engine compresses it (and the manifest changes)."""
        return self.blob.media_type in UNCOMPRESSED_LAYERS


@dataclass(frozen=True)
class LayoutManifest:
    manifest: Manifest
    platform: str  # os/architecture[/variant], "unknown/unknown" for attestations, "" when unsaid
    config_bytes: bytes
    layers: list[LayoutLayer]
    attests: str | None = None  # the digest of the manifest this attestation describes

    @property
    def descriptor(self) -> Descriptor:
        return self.manifest.descriptor

    @property
    def raw_image(self) -> LocalImage:
        """This manifest as an image, for learning what the registry holds of its uncompressed layers."""
        os_, _, rest = self.platform.partition("/")
        arch, _, variant = rest.partition("/")
        config = config_platform(self.config_bytes) or Platform(os_, arch, variant)
        return LocalImage(self.manifest.digest, self.manifest.config.digest,
                          tuple(layer.blob.digest for layer in self.layers), config.os or os_,
                          config.architecture or arch, config.variant or variant,
                          sum(layer.blob.size for layer in self.layers))


@dataclass(frozen=True)
class LayoutImage:
    top: Manifest | Index  # what goes under the tags
    manifests: list[LayoutManifest]
    names: tuple[str, ...]
    left_out: list[str] = field(default_factory=list)  # platforms PLATFORMS did not ask for
    unattested: list[str] = field(default_factory=list)  # platforms whose attestations are not here (left out)
    named: Descriptor | None = None  # what index.json names, before PLATFORMS (None: index.json is the index)

    @property
    def is_index(self) -> bool:
        return isinstance(self.top, Index)

    @property
    def platforms(self) -> list[str]:
        return [m.platform for m in self.manifests if m.attests is None and m.platform != "unknown/unknown"]


# -- small pure helpers -------------------------------------------------------------------------
def name_matches(names: tuple[str, ...], package: str, tag: str, given: str) -> bool:
    """Whether an image stored under `names` is the one IMAGE_NAME (`given`: package[:tag]) asks for.

    A name may be a tag alone (skopeo and BuildKit's ref.name), `name:tag`, or a full reference with a
    registry and path (docker's RepoTags, containerd's image name).
    """
    wanted = f"{package}:{tag}"
    for name in names:
        if name in (given, wanted, tag) or name.endswith("/" + wanted):
            return True
    return False


def config_platform(config: bytes) -> Platform | None:
    """The platform an image config names; None when it is not a config."""
    try:
        return ImageConfig.parse(config).platform
    except ManifestError:
        return None


def describe(names: tuple[str, ...], detail: str) -> str:
    return f"{', '.join(names) if names else '(no name)'} [{detail}]"


def choose(kind: str, shown: str, options: list[tuple[tuple[str, ...], str, Any]], package: str, tag: str,
           given: str) -> Any:
    """The one image among `options` ((names, detail, item)) that IMAGE_NAME names, or the only one."""
    if len(options) == 1:
        return options[0][2]
    matches = [item for names, _, item in options if name_matches(names, package, tag, given)]
    if len(matches) == 1:
        return matches[0]
    listing = "; ".join(describe(names, detail) for names, detail, _ in options)
    why = "several match" if matches else "none is named"
    raise PipeFailure(f"The {kind} {shown} holds {len(options)} images and {why} {given}: {listing}. Set IMAGE_NAME "
                      "to one of these names (name:tag), or save only the image to push")


def _small_file(files: ArchiveFiles, name: str, what: str) -> bytes:
    size = files.size(name)
    if size is None:
        raise PipeFailure(f"{capital(files.description)} has no {name}: {what}")
    if size > MAX_METADATA:
        raise PipeFailure(f"{capital(files.description)} has a {name} of {size} bytes, too large for {what}")
    return files.read(name, MAX_METADATA)


def _json(files: ArchiveFiles, name: str, what: str) -> Any:
    try:
        return json.loads(_small_file(files, name, what))
    except ValueError as exc:
        raise PipeFailure(f"{capital(files.description)} has a {name} that is not JSON ({exc}): the archive is "
                          "damaged") from exc


# -- docker-archive -----------------------------------------------------------------------------
def is_docker_archive(files: ArchiveFiles) -> bool:
    return files.size("manifest.json") is not None


def docker_archive_image(files: ArchiveFiles, shown: str, package: str, tag: str, given: str) -> DockerArchiveImage:
    entries = _json(files, "manifest.json", "a docker save archive lists its images there")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        raise PipeFailure(f"{capital(files.description)} has a manifest.json that lists no image: the archive is "
                          "damaged")
    options = [(tuple(e.get("RepoTags") or ()), f"config {str(e.get('Config', ''))[:24]}", e) for e in entries]
    entry = choose("archive", shown, options, package, tag, given)
    config_path = safe_name(str(entry.get("Config") or ""), files.description)
    if files.size(config_path) is None:
        raise PipeFailure(f"{capital(files.description)} lacks the image config {config_path} that manifest.json "
                          "names: the archive is incomplete")
    config = files.read(config_path, MAX_METADATA)
    image_id = digest_of(config)
    stem = config_path.rsplit("/", 1)[-1].removesuffix(".json")
    if len(stem) == 64 and f"sha256:{stem}" != image_id:
        raise PipeFailure(f"The image config {config_path} in {files.description} hashes to {image_id}: the archive "
                          "is damaged")
    read = _image_config(files, config_path, config)
    diff_ids = read.diff_ids or ()
    paths = tuple(safe_name(str(p), files.description) for p in entry.get("Layers") or ())
    if len(paths) != len(diff_ids):
        raise PipeFailure(f"{capital(files.description)}: manifest.json lists {len(paths)} layers but the image config "
                          f"has {len(diff_ids)}: the archive is damaged")
    size = 0
    for position, path in enumerate(paths):
        found = files.size(path)
        if found is None:
            raise PipeFailure(f"{capital(files.description)} lacks layer {position + 1} of {len(paths)} ({path}): the "
                              "archive is incomplete; save the image again")
        size += found
    names = tuple(entry.get("RepoTags") or ())
    image = LocalImage(names[0] if names else f"{shown} ({image_id[:19]})", image_id, diff_ids,
                       read.platform.os or "linux", read.platform.architecture or "amd64", read.platform.variant, size)
    return DockerArchiveImage(image, config, paths, names)


def _image_config(files: ArchiveFiles, path: str, data: bytes) -> ImageConfig:
    """A docker-archive's image config, which must name its layers' diff IDs."""
    try:
        config = ImageConfig.parse(data)
    except ManifestError as exc:
        reason = f"it {exc}"
    else:
        if config.diff_ids is not None:
            return config
        reason = "it names no rootfs.diff_ids"
    raise PipeFailure(f"The image config {path} in {files.description} is not an image config ({reason}): the "
                      "archive is damaged")


# -- OCI layout ---------------------------------------------------------------------------------
def blob_path(digest: str, description: str) -> str:
    algorithm, _, encoded = digest.partition(":")
    if algorithm != "sha256" or len(encoded) != 64 or not all(c in "0123456789abcdef" for c in encoded):
        raise PipeFailure(f"{description} names a blob {digest!r}: only sha256 digests are supported")
    return f"blobs/sha256/{encoded}"


def _verified_blob(files: ArchiveFiles, blob: Descriptor, what: str) -> bytes:
    path = blob_path(blob.digest, files.description)
    size = files.size(path)
    if size is None:
        raise PipeFailure(f"{capital(files.description)} lacks the {what} {blob.digest} ({path}): the layout is "
                          "incomplete")
    if size > MAX_METADATA:
        raise PipeFailure(f"{capital(files.description)}: the {what} {blob.digest} is {size} bytes, too large")
    data = files.read(path, MAX_METADATA)
    if digest_of(data) != blob.digest or len(data) != blob.size:
        raise PipeFailure(f"The {what} {blob.digest} in {files.description} does not match its digest (it holds "
                          f"{len(data)} bytes hashing to {digest_of(data)}): the layout is damaged")
    return data


def _parsed(files: ArchiveFiles, blob: Descriptor, what: str) -> Manifest | Index:
    """The manifest or index `blob` names, read whole, checked against its digest and parsed."""
    body = _verified_blob(files, blob, what)
    try:
        return parse(body, blob.media_type)
    except NotJSON as exc:
        raise PipeFailure(f"The {what} {blob.digest} in {files.description} is not JSON: the layout is "
                          "damaged") from exc
    except NotAnObject as exc:
        raise PipeFailure(f"{capital(files.description)}: {blob.digest} is not a manifest or an index") from exc
    except BadDescriptor as exc:
        raise PipeFailure(f"{capital(files.description)}: the {what} {blob.digest} {exc}: the layout is "
                          "damaged") from exc
    except ManifestError as exc:  # no config, or schema 1
        raise nested(files, blob.digest) from exc


def nested(files: ArchiveFiles, digest: str) -> PipeFailure:
    return PipeFailure(f"{capital(files.description)}: {digest} is not an image manifest (nested indexes are not "
                       "supported): push each image of it on its own")


def _layout_manifest(files: ArchiveFiles, manifest: Manifest | Index, platform: str,
                     attests: str | None) -> LayoutManifest:
    if isinstance(manifest, Index):
        raise nested(files, manifest.digest)
    config_bytes = _verified_blob(files, manifest.config, "image config")
    if not platform:
        platform = str(config_platform(config_bytes) or "")
    layers = [LayoutLayer(layer, blob_path(layer.digest, files.description)) for layer in manifest.layers]
    return LayoutManifest(manifest, platform, config_bytes, layers, attests)


def _names(descriptor: Descriptor) -> tuple[str, ...]:
    annotations = descriptor.annotations
    return tuple(dict.fromkeys(annotations[k] for k in (IMAGE_NAME_ANNOTATION, REF_NAME) if annotations.get(k)))


@dataclass(frozen=True)
class Kept:
    """What an index keeps: its manifests that are here and that PLATFORMS asks for (attestations follow
    their image), the entries naming them, the platforms left out, those whose attestations are not here."""

    manifests: list[LayoutManifest]
    entries: list[Descriptor]
    left_out: list[str]
    unattested: list[str]
    changed: bool  # an entry was left out: the index is rebuilt


def _index_children(files: ArchiveFiles, index: Index, platforms: tuple[str, ...], shown: str) -> Kept:
    """An image manifest that is not here fails the push, naming its platform; an attestation that is not
    here is left out (a `docker pull` into the containerd store does not fetch attestations), and the
    index is rebuilt without it."""
    selection = select_children(index, platforms, shown)
    absent = [child for child in selection.children if files.size(blob_path(child.descriptor.digest,
                                                                            files.description)) is None]
    if any(not child.attests for child in absent):
        raise PipeFailure(absent_platforms_message(files, selection.children, absent, shown))
    platform_of_digest = {child.descriptor.digest: child.platform for child in selection.children}
    unattested = [platform_of_digest.get(child.attests or "", "") or "?" for child in absent]
    here = [child for child in selection.children if child not in absent]
    manifests = [_layout_manifest(files, _parsed(files, child.descriptor, "manifest"), child.platform, child.attests)
                 for child in here]
    return Kept(manifests, [child.descriptor for child in here], selection.left_out, unattested,
                selection.changed or bool(absent))


def absent_platforms_message(files: ArchiveFiles, children: list[Child], absent: list[Child], shown: str) -> str:
    """An index some of whose platforms have no content here (an image pulled for one platform, as a
    `docker pull` of a multi-platform image into the containerd store leaves it): name them."""
    missing = [child for child in absent if not child.attests]
    held = [child.platform for child in children if not child.attests and child not in absent and child.platform]
    fix = f"set PLATFORMS to {' '.join(held)} to push what is there, or " if held else ""
    return (f"{capital(files.description)} holds no content for "
            f"{', '.join(child.platform or 'a platform it does not name' for child in missing)} of the multi-platform "
            f"image {shown} (its manifest{'s are' if len(missing) > 1 else ' is'} not there: "
            f"{', '.join(child.descriptor.digest[:19] for child in missing)}): {fix}pull or build the image for every "
            "platform first (`docker pull --platform`, `docker buildx build --platform ... --load`)")


def _index_json(files: ArchiveFiles) -> Index:
    body = _small_file(files, "index.json", "an OCI layout lists its images there")
    try:
        index = Index.parse(body)
    except NotJSON as exc:
        raise PipeFailure(f"{capital(files.description)} has a index.json that {exc}: the archive is damaged") from exc
    except BadDescriptor as exc:
        raise PipeFailure(f"{capital(files.description)}: its index.json {exc}: the layout is damaged") from exc
    except ManifestError as exc:
        raise PipeFailure(f"{capital(files.description)} has an index.json that is not an OCI index: the layout is "
                          "damaged") from exc
    if not index.manifests:
        raise PipeFailure(f"{capital(files.description)} holds no image (its index.json lists no manifest)")
    return index


def _is_the_index(entries: tuple[Descriptor, ...]) -> bool:
    """Whether index.json is itself the multi-platform index: one entry per platform, none named."""
    listed = [entry.platform_text for entry in entries]
    return len(entries) > 1 and not any(_names(e) for e in entries) and all(listed) and len(set(listed)) == len(entries)


def layout_image(files: ArchiveFiles, shown: str, package: str, tag: str, given: str,
                 platforms: tuple[str, ...]) -> LayoutImage:
    entries = _index_json(files).manifests
    if _is_the_index(entries):
        kept = _index_children(files, Index.new(entries), platforms, shown)
        return LayoutImage(Index.new(kept.entries), kept.manifests, (), kept.left_out, kept.unattested)
    options = [(_names(e), " ".join(filter(None, ((e.media_type or "?").rsplit("/", 1)[-1], e.digest[:19],
                                                  e.platform_text))), e) for e in entries]
    chosen: Descriptor = choose("OCI layout", shown, options, package, tag, given)
    top = _parsed(files, chosen, "index" if is_index(chosen.media_type) else "manifest")
    named = Descriptor(chosen.digest, chosen.size, top.media_type)
    if isinstance(top, Index):
        kept = _index_children(files, top, platforms, shown)
        rebuilt = top.rebuilt(kept.entries, top.media_type) if kept.changed else top
        return LayoutImage(rebuilt, kept.manifests, _names(chosen), kept.left_out, kept.unattested, named)
    manifest = _layout_manifest(files, top, chosen.platform_text, None)
    if platforms and not any(platform_matches(manifest.platform, want) for want in platforms):
        raise PipeFailure(f"PLATFORMS asks for {' '.join(platforms)}, but the image in {shown} is built for "
                          f"{manifest.platform or 'an unnamed platform'}: set PLATFORMS to match, or leave it out")
    return LayoutImage(top, [manifest], _names(chosen), named=named)


def has_compressed_layers(files: ArchiveFiles, shown: str) -> bool:
    """Whether an OCI layout beside a manifest.json stores compressed layers (containerd's save)."""
    try:
        image = layout_image(files, shown, "", "", "", ())
    except PipeFailure:
        return False
    return any(not layer.raw for m in image.manifests for layer in m.layers)


# -- the archive as a whole -----------------------------------------------------------------------
@dataclass(frozen=True)
class Archive:
    files: ArchiveFiles
    kind: str  # docker-archive, oci-layout or oci-archive
    docker: DockerArchiveImage | None = None
    layout: LayoutImage | None = None


def read_archive(files: ArchiveFiles, shown: str, package: str, tag: str, given: str,
                 platforms: tuple[str, ...]) -> Archive:
    """Which kind of archive `files` is, and the image in it that IMAGE_NAME (and PLATFORMS) pick."""
    has_index = files.size("index.json") is not None
    if is_docker_archive(files) and not (has_index and has_compressed_layers(files, shown)):
        if platforms:
            raise PipeFailure(f"PLATFORMS is set, but {shown} is a docker save archive, which holds one platform per "
                              "image: leave PLATFORMS out")
        return Archive(files, "docker-archive", docker=docker_archive_image(files, shown, package, tag, given))
    if has_index:
        return Archive(files, "oci-layout" if files.container == "directory" else "oci-archive",
                       layout=layout_image(files, shown, package, tag, given, platforms))
    raise PipeFailure(f"IMAGE_ARCHIVE {shown} is a tar, but neither a docker save archive (no manifest.json) nor an "
                      "OCI archive (no index.json): give the file that `docker save`, `skopeo copy` or `buildah push` "
                      "wrote")
