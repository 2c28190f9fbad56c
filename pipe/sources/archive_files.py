"""The files inside an image archive, read in place or as a stream, never unpacked.

Three containers, told apart by their content, not their names:
- a directory (an OCI layout): files read where they are;
- a tar file: its member headers are read once, then each member is read at its offset in the file;
- a gzip-compressed tar: no offsets, so one pass lists the members and keeps the small ones
  (index.json, manifests, configs), and each later pass streams the wanted members in the order they
  stand. Decompression runs on a thread of its own (isal).
Every name is checked: a member that climbs out of the archive (`..`, an absolute name), or a link
that points outside it, refuses the whole archive before anything is sent.
"""
from __future__ import annotations

import posixpath
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Collection, Iterator, Protocol

from isal import igzip_threaded

from ..errors import PipeFailure, capital
from ..oci import GZIP_MAGIC, ZSTD_MAGIC, is_tar_header

SMALL_FILE = 4 * 1024 * 1024  # kept from the listing pass of a gzip tar: manifests, configs, index.json
SMALL_TOTAL = 64 * 1024 * 1024
TAR_BUFFER = 1024 * 1024
READ_SIZE = 1024 * 1024


class Reader(Protocol):
    def read(self, n: int = -1) -> bytes: ...


class ArchiveFiles(Protocol):
    description: str  # for messages: "the OCI layout build/image"
    container: str  # directory, tar or gzip tar
    seekable: bool  # members can be read in any order without reading the others

    def size(self, name: str) -> int | None: ...
    def read(self, name: str, limit: int = SMALL_FILE) -> bytes: ...
    def stream(self, names: Collection[str]) -> Iterator[tuple[str, Reader]]: ...


def safe_name(raw: str, description: str) -> str:
    """A member name as a path inside the archive (`./a//b` -> `a/b`); refuses any that climbs out."""
    if raw.startswith("/"):
        raise PipeFailure(f"{capital(description)} holds a member with an absolute name ({raw!r}): it is not a safe "
                          "image archive; the pipe reads nothing from it")
    name = posixpath.normpath(raw) if raw not in ("", ".") else "."
    if name == ".." or name.startswith("../"):
        raise PipeFailure(f"{capital(description)} holds a member whose name climbs out of the archive ({raw!r}): it "
                          "is not a safe image archive; the pipe reads nothing from it")
    return name


def damaged(description: str, detail: object) -> PipeFailure:
    return PipeFailure(f"{capital(description)} is truncated or damaged ({detail}): save or copy the image again "
                       "(a cut artifact download or a full disk while saving are the usual causes)")


# -- a directory --------------------------------------------------------------------------------
class DirectoryFiles:
    container = "directory"
    seekable = True

    def __init__(self, root: Path, description: str) -> None:
        self.root = root.resolve()
        self.description = description

    def _path(self, name: str) -> Path:
        path = (self.root / safe_name(name, self.description)).resolve()
        if path != self.root and self.root not in path.parents:
            raise PipeFailure(f"{capital(self.description)} has a link {name!r} that points outside the layout: it is "
                              "not a safe image layout; the pipe reads nothing from it")
        return path

    def size(self, name: str) -> int | None:
        path = self._path(name)
        return path.stat().st_size if path.is_file() else None

    def read(self, name: str, limit: int = SMALL_FILE) -> bytes:
        with open(self._path(name), "rb") as handle:
            return handle.read(limit + 1)

    def stream(self, names: Collection[str]) -> Iterator[tuple[str, Reader]]:
        for name in names:
            with open(self._path(name), "rb") as handle:
                yield name, handle


# -- a tar, read in place -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Member:
    offset: int
    size: int


class _Slice:
    """A member's bytes, read at their offset in the tar file."""

    def __init__(self, handle: BinaryIO, member: _Member) -> None:
        self.handle = handle
        self.left = member.size
        handle.seek(member.offset)

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.handle.read(n) if n else b""
        self.left -= len(data)
        return data


def _links(members: list[tarfile.TarInfo], description: str) -> tuple[dict[str, tarfile.TarInfo], dict[str, str]]:
    """Regular files by safe name, and each link's name -> the regular file it ends at."""
    files: dict[str, tarfile.TarInfo] = {}
    links: dict[str, str] = {}
    for member in members:
        name = safe_name(member.name, description)
        if member.isfile():
            files[name] = member
        elif member.issym():
            links[name] = safe_name(posixpath.join(posixpath.dirname(name), member.linkname), description)
        elif member.islnk():
            links[name] = safe_name(member.linkname, description)
    resolved = {}
    for name, target in links.items():
        for _ in range(16):  # a chain of links, bounded
            if target not in links:
                break
            target = links[target]
        if target in files:
            resolved[name] = target
    return files, resolved


class TarFiles:
    container = "tar"
    seekable = True

    def __init__(self, path: Path, description: str) -> None:
        self.path = path
        self.description = description
        try:
            with tarfile.open(path, "r:") as archive:
                members = archive.getmembers()
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise damaged(description, exc) from exc
        files, self.links = _links(members, description)
        total = path.stat().st_size
        self.members = {name: _Member(m.offset_data, m.size) for name, m in files.items()}
        for name, member in self.members.items():
            if member.offset + member.size > total:
                raise damaged(description, f"{name} is cut after {max(0, total - member.offset)} of its "
                                           f"{member.size} bytes")

    def _member(self, name: str) -> tuple[str, _Member] | None:
        name = self.links.get(name, name)
        member = self.members.get(name)
        return None if member is None else (name, member)

    def size(self, name: str) -> int | None:
        found = self._member(safe_name(name, self.description))
        return None if found is None else found[1].size

    def read(self, name: str, limit: int = SMALL_FILE) -> bytes:
        found = self._member(safe_name(name, self.description))
        if found is None:
            raise FileNotFoundError(name)
        with open(self.path, "rb") as handle:
            return _Slice(handle, found[1]).read(limit + 1)

    def stream(self, names: Collection[str]) -> Iterator[tuple[str, Reader]]:
        found = [(name, self._member(name)) for name in names]
        # In the order they stand in the file: one forward sweep over the disk.
        with open(self.path, "rb") as handle:
            for name, member in sorted(found, key=lambda item: item[1][1].offset if item[1] else -1):
                if member is None:
                    raise FileNotFoundError(name)
                yield name, _Slice(handle, member[1])


# -- a gzip-compressed tar, as a stream ---------------------------------------------------------
class _Guarded:
    """A member of a stream: a cut or damaged stream becomes the pipe's message, wherever it is read."""

    def __init__(self, handle: BinaryIO, description: str) -> None:
        self.handle = handle
        self.description = description

    def read(self, n: int = -1) -> bytes:
        try:
            return self.handle.read(n)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise damaged(self.description, exc) from exc


class GzipTarFiles:
    container = "gzip tar"
    seekable = False

    def __init__(self, path: Path, description: str) -> None:
        self.path = path
        self.description = description
        self.small: dict[str, bytes] = {}
        self.sizes: dict[str, int] = {}
        kept = 0
        members: list[tarfile.TarInfo] = []
        for member, handle in self._members():
            members.append(member)
            if handle is not None and member.size <= SMALL_FILE and kept + member.size <= SMALL_TOTAL:
                data = handle.read()
                kept += len(data)
                self.small[safe_name(member.name, description)] = data
        files, self.links = _links(members, description)
        self.sizes = {name: m.size for name, m in files.items()}

    def _members(self) -> Iterator[tuple[tarfile.TarInfo, _Guarded | None]]:
        """One pass over the decompressed tar; each member's reader is valid until the next."""
        try:
            with igzip_threaded.open(self.path, "rb", threads=1) as raw, \
                    tarfile.open(fileobj=raw, mode="r|", bufsize=TAR_BUFFER) as archive:
                for member in archive:
                    handle = archive.extractfile(member) if member.isfile() else None
                    yield member, None if handle is None else _Guarded(handle, self.description)
        except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
            raise damaged(self.description, exc) from exc

    def size(self, name: str) -> int | None:
        name = safe_name(name, self.description)
        return self.sizes.get(self.links.get(name, name))

    def read(self, name: str, limit: int = SMALL_FILE) -> bytes:
        name = safe_name(name, self.description)
        name = self.links.get(name, name)
        if name in self.small:
            return self.small[name][:limit + 1]
        if name not in self.sizes:
            raise FileNotFoundError(name)
        for _, reader in self.stream([name]):
            return reader.read(limit + 1)
        raise FileNotFoundError(name)

    def stream(self, names: Collection[str]) -> Iterator[tuple[str, Reader]]:
        wanted: dict[str, list[str]] = {}
        for name in names:
            wanted.setdefault(self.links.get(name, name), []).append(name)
        for member, handle in self._members():
            name = safe_name(member.name, self.description)
            if handle is not None and name in wanted:
                for asked in wanted.pop(name):
                    yield asked, handle
            if not wanted:
                return
        if wanted:
            raise FileNotFoundError(next(iter(wanted)))


# -- which one ----------------------------------------------------------------------------------
def open_files(path: Path, shown: str) -> ArchiveFiles:
    """The container at `path` (`shown` is how the user named it), by its content."""
    if path.is_dir():
        if not (path / "oci-layout").is_file() and not (path / "index.json").is_file():
            raise PipeFailure(f"IMAGE_ARCHIVE {shown} is a directory but not an OCI image layout (it has no "
                              "oci-layout or index.json file): give the layout's top directory, a docker save tar, "
                              "or an OCI archive tar")
        return DirectoryFiles(path, f"the OCI layout {shown}")
    if not path.is_file():
        raise PipeFailure(f"IMAGE_ARCHIVE {shown} does not exist: check the path (relative to the clone directory) "
                          "and, when an earlier step made it, that the step lists it under `artifacts`")
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[:2] == GZIP_MAGIC:
        try:
            with igzip_threaded.open(path, "rb", threads=0) as raw:
                inner = raw.read(512)
        except (OSError, EOFError, ValueError) as exc:
            raise damaged(f"the gzip file {shown}", exc) from exc
        if not is_tar_header(inner):
            raise PipeFailure(f"IMAGE_ARCHIVE {shown} is gzip-compressed but holds no tar archive: give a docker "
                              "save tar (plain or gzip), an OCI archive tar or an OCI layout directory")
        return GzipTarFiles(path, f"the archive {shown}")
    if head[:4] == ZSTD_MAGIC:
        raise PipeFailure(f"IMAGE_ARCHIVE {shown} is zstd-compressed: the pipe reads plain or gzip-compressed "
                          "tars; decompress it first (`zstd -d`) or save it with gzip")
    if not is_tar_header(head):
        raise PipeFailure(f"IMAGE_ARCHIVE {shown} is not an image archive (neither a tar, a gzip-compressed tar, "
                          "nor an OCI layout directory): give the file that `docker save`, `skopeo copy` or "
                          "`buildah push` wrote")
    return TarFiles(path, f"the archive {shown}")
