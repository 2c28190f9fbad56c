"""The export of an image in the containerd image store, read as the files of an OCI layout.

On that store (`GET /images/{name}/get`, what `docker save` reads) the export is an OCI layout whose
`blobs/sha256/` members are the stored blobs, compressed as they were built and named by digest, in the
order of their names, with `index.json`, `manifest.json` and `oci-layout` last. The index, the manifests
and the configs therefore stand anywhere among the layers: nothing says which blob is what until the
whole stream has gone by. So the export is read like a gzip tar (archive_files.GzipTarFiles): a first
pass lists its members and keeps the small ones (index, manifests, configs, attestation statements), a
later pass streams the layer blobs the registry lacks, in the order they stand. Nothing is spooled: the
layers are never held whole, in memory or on disk.

The second pass costs the daemon a second export, which is why PUSH_ENGINE=auto pushes with the
daemon on this store (BENCHMARKS.md, "Docker engines").
"""
from __future__ import annotations

from typing import Callable, Collection, Iterator

from ..errors import PipeFailure, capital
from . import tar_stream
from .archive_files import SMALL_FILE, SMALL_TOTAL, Reader, safe_name


class _MemberReader:
    """A member of the export stream; a cut stream becomes the pipe's message."""

    def __init__(self, member: tar_stream.Member, damaged: Callable[[BaseException], PipeFailure]) -> None:
        self.member = member
        self.damaged = damaged

    def read(self, n: int = -1) -> memoryview:
        try:
            return self.member.read(n)
        except tar_stream.TarStreamError as exc:
            raise self.damaged(exc) from exc

    def read_all(self, limit: int) -> bytes:
        try:
            return self.member.read_all(limit)
        except tar_stream.TarStreamError as exc:
            raise self.damaged(exc) from exc


class ExportFiles:
    """`ArchiveFiles` over the daemon's export: `open_export()` starts one export (an iterator of chunks)."""

    container = "export"
    seekable = False

    def __init__(self, open_export: Callable[[], Iterator[bytes]], description: str) -> None:
        self.open_export = open_export
        self.description = description
        self.sizes: dict[str, int] = {}
        self.small: dict[str, bytes] = {}
        kept = 0
        for name, member in self._members():
            self.sizes[name] = member.left
            if member.left <= SMALL_FILE and kept + member.left <= SMALL_TOTAL:
                data = _MemberReader(member, self.damaged).read_all(SMALL_FILE)
                kept += len(data)
                self.small[name] = data

    def _members(self) -> Iterator[tuple[str, tar_stream.Member]]:
        seen_any = False
        try:
            for info, member in tar_stream.members(self.open_export()):
                seen_any = True
                if info.isreg():
                    yield safe_name(info.name, self.description), member
        except tar_stream.TarStreamError as exc:
            if not seen_any:
                raise PipeFailure(f"{capital(self.description)} is not a tar stream ({exc}): check the docker "
                                  "service of this step") from exc
            raise self.damaged(exc) from exc

    def damaged(self, exc: BaseException) -> PipeFailure:
        return PipeFailure(f"{capital(self.description)} ended early or is damaged ({exc}): check the docker "
                           "service of this step and run it again")

    def size(self, name: str) -> int | None:
        return self.sizes.get(safe_name(name, self.description))

    def read(self, name: str, limit: int = SMALL_FILE) -> bytes:
        name = safe_name(name, self.description)
        if name in self.small:
            return self.small[name][:limit + 1]
        if name not in self.sizes:
            raise FileNotFoundError(name)
        for _, reader in self.stream([name]):
            return bytes(reader.read(limit + 1))
        raise FileNotFoundError(name)

    def stream(self, names: Collection[str]) -> Iterator[tuple[str, Reader]]:
        """A new export, handing out the members asked for as they come; it stops once the last has gone."""
        wanted = {safe_name(name, self.description): name for name in names}
        members = self._members()
        try:
            for name, member in members:
                asked = wanted.pop(name, None)
                if asked is not None:
                    yield asked, _MemberReader(member, self.damaged)
                if not wanted:
                    return
        finally:
            members.close()  # the rest of the export is not read: let the daemon stop writing it
        if wanted:
            raise self.damaged(f"{next(iter(wanted.values()))} is missing from this export")
