"""The storage layer's one door: what the handlers, the management API, the pages and the collection call.

Nothing outside the storage layer (this module, `metadata/`, `blobfiles.py` and `uploads.py`)
touches the database or the blob files; the collection (`gc.py`) decides when and what, through
the steps below. Metadata calls run on one dedicated thread (serialised, never blocking the
event loop); hashing and file writes run on an I/O pool. A per-workspace lock orders the two
moments where files and rows must change together: a verified upload moving into place, and a
collection deleting a blob. Refusals are typed errors (`storage_errors.py`), never HTTP answers.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import AsyncIterator, Callable, TypeVar

from .blobfiles import BlobFiles
from .config import Config
from .digests import digest_of
from .immutable_tags import ImmutableTags
from .manifests import ParsedManifest, parse_manifest
from .metadata import BlobRecord, ManifestRecord, Metadata, Package, PackageContents, PackageFigures, StorageFigures
from .names import parse_reference
from .storage_errors import (
    ChunkOutOfOrder,
    DigestMismatch,
    ManifestBlobsMissing,
    ManifestInvalid,
    UploadTooLarge,
    UploadUnknown,
)
from .uploads import BodyInterrupted, Chunk, Progress, UploadSession, append_stream, new_upload_id

T = TypeVar("T")
METADATA_FILE = "metadata.db"
log = logging.getLogger("registry")


class Store:
    def __init__(self, root: Path, config: Config) -> None:
        self.root = root
        self.config = config
        root.mkdir(parents=True, exist_ok=True)
        self.files = BlobFiles(root)
        self.meta = Metadata(root / METADATA_FILE)
        self._db_thread = ThreadPoolExecutor(1, thread_name_prefix="metadata")
        self.io = ThreadPoolExecutor(8, thread_name_prefix="blob-io")
        self.uploads: dict[str, UploadSession] = {}
        self.workspace_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        # Called with the workspace when a push or a delete leaves something unreferenced (app.py: a collection).
        self.on_dereference: Callable[[str], None] = lambda workspace: None
        self.files.purge_uploads()
        for workspace, digest in self.meta.interrupted_deletions():
            self.files.remove_blob(workspace, digest)
            self.meta.forget_blob(workspace, digest)
        for slug, ws in config.workspaces.items():
            self.meta.seed_packages(slug, ws.packages)
            if self.meta.seed_settings(slug, ws.immutable_tags.to_json()):
                log.info("workspace %s: immutable tags as the config gives them (protect: %s)",
                         slug, ws.immutable_tags.protect)
            else:
                log.info("workspace %s: immutable tags as last changed through the API (the config's are unchanged)",
                         slug)

    async def db(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db_thread, fn, *args)

    async def run_io(self, fn: Callable[..., T], *args) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.io, fn, *args)

    def close(self) -> None:
        for session in list(self.uploads.values()):
            self._drop_upload(session)
        self.io.shutdown(wait=True)
        self._db_thread.submit(self.meta.close).result()
        self._db_thread.shutdown(wait=True)

    # -- packages -----------------------------------------------------------------------
    async def package(self, workspace: str, name: str) -> Package | None:
        return await self.db(self.meta.package, workspace, name)

    async def packages(self, workspace: str) -> list[Package]:
        return await self.db(self.meta.packages, workspace)

    async def create_package(self, workspace: str, name: str, repository: str) -> Package | None:
        """None when a live package of that name exists already."""
        return await self.db(self.meta.create_package, workspace, name, repository)

    async def delete_package(self, package: Package, workspace_admin: bool) -> int:
        """Delete the image and its tags (returns how many); its blobs wait for a collection.
        Immutable tags among them: ImageHoldsImmutableTags, unless by a workspace admin."""
        tags = await self.db(self.meta.delete_package, package, workspace_admin)
        self.on_dereference(package.workspace)
        return tags

    async def package_figures(self, packages: list[Package]) -> dict[int, PackageFigures]:
        return await self.db(self.meta.package_figures, packages)

    async def package_contents(self, package: Package) -> PackageContents:
        return await self.db(self.meta.package_contents, package)

    async def storage_figures(self, workspace: str) -> StorageFigures:
        return await self.db(self.meta.storage_figures, workspace, self.config.grace_seconds)

    # -- settings -----------------------------------------------------------------------
    async def immutable_tags(self, workspace: str) -> ImmutableTags:
        return await self.db(self.meta.immutable_tags, workspace)

    async def set_immutable_tags(self, workspace: str, settings: ImmutableTags, username: str) -> None:
        await self.db(self.meta.set_immutable_tags, workspace, settings, username)

    # -- blobs --------------------------------------------------------------------------
    async def blob(self, package: Package, digest: str, *, confirm: bool = False) -> BlobRecord | None:
        """A blob visible in the package; `confirm` (a HEAD) protects it from collection for the grace period."""
        return await self.db(self.meta.blob, package, digest, confirm)

    def blob_path(self, package: Package, digest: str) -> Path:
        return self.files.blob_path(package.workspace, digest)

    async def read_blob(self, package: Package, digest: str) -> bytes:
        """A small blob's bytes (an image config); OSError when its file cannot be read."""
        return await self.run_io(self.blob_path(package, digest).read_bytes)

    async def mount(self, package: Package, digest: str) -> BlobRecord | None:
        return await self.db(self.meta.mount_blob, package, digest)

    # -- uploads ------------------------------------------------------------------------
    # Each request is one call: it finds the session, makes every check in order, and appends
    # under the session's lock. A body cut short keeps what arrived (the session's offset says how much);
    # any other failure (limit, time-out, disk) discards the whole session.
    async def start_upload(self, package: Package, username: str, declared: int | None = None) -> UploadSession:
        """A new session; `declared` (the length the request declared) is refused at once when over the limit."""
        self._check_fits(None, declared)
        upload_id = new_upload_id()
        path = self.files.upload_path(upload_id)
        file = await self.run_io(open, path, "xb")
        now = time.time()
        session = UploadSession(
            upload_id, package, username, now, now + self.config.upload_timeout_seconds, file
        )
        self.uploads[upload_id] = session
        return session

    def upload(self, upload_id: str, package: Package, username: str) -> UploadSession:
        """The session, only for the package and member that started it and only while it lives."""
        session = self.uploads.get(upload_id)
        if session is None or session.package.id != package.id or session.username != username:
            raise UploadUnknown("upload session unknown, finished or expired: start a new upload")
        if time.time() > session.expires_at:
            self._drop_upload(session)
            raise UploadUnknown(
                f"upload session expired: uploads must finish within {self.config.upload_timeout_seconds:g} s"
            )
        return session

    async def append_chunk(self, upload_id: str, package: Package, username: str, chunk: Chunk) -> Progress:
        """A PATCH: the chunk must fit under the limit and start where the upload ends.

        A chunk that declared a span and fell short is kept, whole, and reported with what it declared
        and what arrived: the client resumes from the offset."""
        session = self.upload(upload_id, package, username)
        if chunk.invalid is not None:
            raise chunk.invalid
        async with session.lock:
            self._check_fits(session, chunk.length)
            try:
                appended = await self._append(session, chunk.body, start=chunk.span[0] if chunk.span else None)
            except BodyInterrupted as exc:
                appended = exc.received
        if chunk.span is not None and appended != chunk.span[1] - chunk.span[0] + 1:
            return Progress(session.id, session.offset, declared=chunk.span[1] - chunk.span[0] + 1, arrived=appended)
        return Progress(session.id, session.offset)

    async def finish_upload(self, upload_id: str, package: Package, username: str, chunk: Chunk) -> BlobRecord:
        """A PUT: append its body (if any), verify `chunk.digest`, and make the blob visible."""
        session = self.upload(upload_id, package, username)
        if chunk.invalid is not None:
            raise chunk.invalid
        async with session.lock:
            self._check_fits(session, chunk.length)
            if chunk.length != 0:
                await self._append(session, chunk.body)
            return await self._commit(session, chunk.digest)

    async def upload_blob(self, package: Package, username: str, chunk: Chunk) -> BlobRecord:
        """A monolithic POST: the whole blob in one body, verified against `chunk.digest`."""
        self._check_fits(None, chunk.length)
        if chunk.invalid is not None:
            raise chunk.invalid
        session = await self.start_upload(package, username)
        async with session.lock:
            try:
                await self._append(session, chunk.body)
            except BodyInterrupted:
                self._drop_upload(session)  # nobody can resume a monolithic upload
                raise
            return await self._commit(session, chunk.digest)

    async def cancel_upload(self, upload_id: str, package: Package, username: str) -> None:
        session = self.upload(upload_id, package, username)
        async with session.lock:
            self._drop_upload(session)

    def expire_uploads(self) -> int:
        now = time.time()
        expired = [s for s in self.uploads.values() if now > s.expires_at and not s.lock.locked()]
        for session in expired:
            self._drop_upload(session)
        return len(expired)

    def _check_fits(self, session: UploadSession | None, declared: int | None) -> None:
        """Refuse a declared length that takes the upload past the limit, and end the session:
        its partial data can never become a layer, so it is discarded now."""
        if declared is None or (session.offset if session else 0) + declared <= self.config.max_layer_bytes:
            return
        if session is not None:
            self._drop_upload(session)
        raise UploadTooLarge(self.config.max_layer_bytes)

    async def _append(self, session: UploadSession, chunks: AsyncIterator[bytes], start: int | None = None) -> int:
        """Append a body under the session's lock (the caller holds it); returns the bytes appended."""
        if session.closed:
            raise UploadUnknown("upload session was closed")
        if start is not None and start != session.offset:
            raise ChunkOutOfOrder(start, session.offset)
        try:
            return await append_stream(session, chunks, max_bytes=self.config.max_layer_bytes, executor=self.io)
        except BodyInterrupted:
            raise
        except BaseException:
            self._drop_upload(session)
            raise

    async def _commit(self, session: UploadSession, digest: str | None) -> BlobRecord:
        """Verify the digest, then make the blob visible; a mismatch leaves nothing behind."""
        if session.closed:
            raise UploadUnknown("upload session was closed")
        self.uploads.pop(session.id, None)
        session.closed = True
        try:
            await self.run_io(session.file.close)
            actual = session.digest()
            if actual != digest:
                raise DigestMismatch(
                    f"uploaded content has digest {actual}, not the {digest} given: nothing was stored"
                )
            package = session.package
            async with self.workspace_locks[package.workspace]:
                await self.run_io(self.files.commit, session.id, package.workspace, digest)
                await self.db(self.meta.add_blob, package, digest, session.offset)
        finally:
            self.files.discard_upload(session.id)
        return BlobRecord(digest, session.offset)

    def _drop_upload(self, session: UploadSession) -> None:
        session.closed = True
        self.uploads.pop(session.id, None)
        try:
            session.file.close()
        finally:
            self.files.discard_upload(session.id)

    # -- manifests and tags -------------------------------------------------------------
    async def resolve(self, package: Package, reference: str) -> ManifestRecord | None:
        """The manifest a tag or digest names; NameError_ for a reference that is neither."""
        tag, digest = parse_reference(reference)
        if tag is not None:
            digest = await self.db(self.meta.tag_digest, package, tag)
            if digest is None:
                return None
        return await self.db(self.meta.manifest, package, digest)

    async def put_manifest(
        self, package: Package, reference: str, body: bytes, content_type: str | None
    ) -> tuple[str, ParsedManifest]:
        tag, given_digest = parse_reference(reference)
        parsed = parse_manifest(body, content_type)
        digest = digest_of(body)
        if given_digest is not None and given_digest != digest:
            raise DigestMismatch(f"manifest body has digest {digest}, not the {given_digest} in the URL")
        blobs = [(d.digest, d.size) for d in parsed.blobs]
        children = [(d.digest, d.size) for d in parsed.manifests]
        wrong = await self.db(self.meta.wrong_sizes, package, blobs, children)
        if wrong:
            # Clients check what they pull against these sizes: such an image could never be pulled.
            raise ManifestInvalid(f"manifest declares sizes that are not the content's: {'; '.join(wrong)}", wrong)
        # An immutable tag holding another digest: TagOverwriteRefused, with nothing stored.
        missing, replaced = await self.db(
            self.meta.put_manifest, package, digest, parsed.media_type, body, blobs, children, tag
        )
        if missing:
            raise ManifestBlobsMissing(missing)
        if replaced is not None:
            # The old manifest lost its tag: schedule a collection, as the registry does.
            self.on_dereference(package.workspace)
        return digest, parsed

    async def delete_tag(self, package: Package, tag: str, workspace_admin: bool) -> bool:
        """False when the package has no such tag; the manifest it left waits for a collection.
        An immutable tag: TagDeleteRefused, unless by a workspace admin."""
        deleted = await self.db(self.meta.delete_tag, package, tag, workspace_admin)
        if deleted:
            self.on_dereference(package.workspace)
        return deleted

    # -- collection: the steps gc.py takes, in its order ----------------------------------
    async def sweep_manifests(self, workspace: str, cutoff: float) -> int:
        """Delete untagged manifests no index references, untouched since `cutoff`; how many went."""
        return await self.db(self.meta.sweep_manifests, workspace, cutoff)

    async def mark_unreferenced_blobs(self, workspace: str, cutoff: float) -> tuple[list[tuple[str, int]], int]:
        """Choose and mark the unreferenced blobs untouched since `cutoff` (reported absent from now
        on); returns them with their sizes, and how many unreferenced ones are still too young."""
        return await self.db(self.meta.mark_blobs, workspace, cutoff)

    async def delete_marked_blobs(self, workspace: str, digests: list[str]) -> list[str]:
        """Delete the files and rows of those `digests` still marked (a re-upload un-marks its row),
        under the workspace lock a finishing upload also takes; returns the digests deleted."""
        async with self.workspace_locks[workspace]:
            doomed = list(set(await self.db(self.meta.still_marked, workspace, digests)))
            for digest in doomed:
                await self.run_io(self.files.remove_blob, workspace, digest)
            await self.db(self.meta.forget_blobs, workspace, doomed)
        return doomed

    async def remove_orphan_files(self, workspace: str, cutoff: float) -> int:
        """Remove blob files with no row, older than `cutoff`: left by a crash between moving a blob
        into place and recording it. Under the workspace lock, so a commit in progress is never one."""
        async with self.workspace_locks[workspace]:
            on_disk = await self.run_io(self.files.stored_files, workspace)
            known = await self.db(self.meta.known_digests, workspace)
            removed = 0
            for digest in set(on_disk) - known:
                path = self.files.blob_path(workspace, digest)
                try:
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed

    async def oldest_unreferenced(self, workspace: str) -> float | None:
        """When the oldest thing a later collection could free was last touched (None: nothing waits)."""
        return await self.db(self.meta.oldest_unreferenced, workspace)
