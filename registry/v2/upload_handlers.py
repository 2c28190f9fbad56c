"""Blob uploads: `POST /v2/<name>/blobs/uploads/` (monolithic, chunked start, or a cross-package mount),
and `GET`/`PATCH`/`PUT`/`DELETE` on a session. Each handler parses the request and makes one store call."""
from __future__ import annotations

import re

from aiohttp import web

from ..errors import RegistryError
from ..metadata import Package
from ..names import is_upload_id
from ..store import Store
from ..uploads import Chunk
from .request_access import API_VERSION, RequestAccess, content_length, digest_param

CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")


def content_range(request: web.Request, length: int | None) -> tuple[int, int] | None:
    """(start, end) of a PATCH's Content-Range; 416 BLOB_UPLOAD_INVALID (the spec's code) when unusable."""
    value = request.headers.get("Content-Range")
    if not value:
        return None
    m = CONTENT_RANGE_RE.match(value.strip())
    if not m or int(m.group(2)) < int(m.group(1)):
        raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {value!r}: use start-end", status=416)
    start, end = int(m.group(1)), int(m.group(2))
    if length is not None and length != end - start + 1:
        raise RegistryError(
            "BLOB_UPLOAD_INVALID",
            f"Content-Range {value!r} spans {end - start + 1} bytes but Content-Length is {length}",
            status=416,
        )
    return start, end


def parse_chunk(request: web.Request, *, finishing: bool) -> Chunk:
    """The body with its Content-Length, and the digest (`finishing`) or the Content-Range; a header
    that does not parse goes in `Chunk.invalid`, for the store to refuse in its turn."""
    body = request.content.iter_any()
    length = span = digest = None
    try:
        length = content_length(request)
        if finishing:
            digest = digest_param(request.query.get("digest"))
        else:
            span = content_range(request, length)
    except RegistryError as exc:
        return Chunk(body, length, span, digest, invalid=exc)
    return Chunk(body, length, span, digest)


class UploadHandlers:
    def __init__(self, store: Store, access: RequestAccess) -> None:
        self.store = store
        self.access = access

    @staticmethod
    def _headers(request: web.Request, upload_id: str, offset: int) -> dict[str, str]:
        name = request.match_info["name"]
        return {
            **API_VERSION,
            "Location": f"/v2/{name}/blobs/uploads/{upload_id}",
            "Range": f"0-{max(offset - 1, 0)}",
            "Docker-Upload-UUID": upload_id,
        }

    @staticmethod
    def _created(request: web.Request, digest: str) -> web.Response:
        name = request.match_info["name"]
        return web.Response(status=201, headers={
            **API_VERSION, "Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest,
        })

    async def _session(self, request: web.Request) -> tuple[str, Package, str]:
        """(upload id, package, username) of a session request, once access to push there is confirmed."""
        package, claims = await self.access.package(request, "push")
        upload_id = request.match_info["upload_id"]
        if not is_upload_id(upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session unknown")
        return upload_id, package, claims.subject

    async def start(self, request: web.Request) -> web.Response:
        package, claims = await self.access.package(request, "push")
        mount = await self.access.mount_source(request, package, claims)
        if mount is not None and await self._mount(package, *mount):
            return self._created(request, mount[0])
        if request.query.get("digest") is not None:
            record = await self.store.upload_blob(package, claims.subject, parse_chunk(request, finishing=True))
            return self._created(request, record.digest)
        session = await self.store.start_upload(package, claims.subject, declared=content_length(request))
        return web.Response(status=202, headers=self._headers(request, session.id, session.offset))

    async def _mount(self, package: Package, digest: str, source: Package) -> bool:
        """Mount a blob of `source` (access to pull it there was decided before); False when it has none."""
        if await self.store.blob(source, digest) is None:
            return False
        return await self.store.mount(package, digest) is not None

    async def status(self, request: web.Request) -> web.Response:
        upload_id, package, username = await self._session(request)
        session = self.store.upload(upload_id, package, username)
        return web.Response(status=204, headers=self._headers(request, session.id, session.offset))

    async def chunk(self, request: web.Request) -> web.Response:
        upload_id, package, username = await self._session(request)
        progress = await self.store.append_chunk(upload_id, package, username, parse_chunk(request, finishing=False))
        headers = self._headers(request, progress.upload_id, progress.offset)
        if progress.short:
            # Whatever arrived is kept, whole: the status (and this answer's Range) says where to go on.
            raise RegistryError("BLOB_UPLOAD_INVALID", (
                f"Content-Range declared {progress.declared} bytes but {progress.arrived} arrived; "
                f"the upload keeps them: continue from byte {progress.offset}"
            ), headers=headers)
        return web.Response(status=202, headers=headers)

    async def finish(self, request: web.Request) -> web.Response:
        upload_id, package, username = await self._session(request)
        record = await self.store.finish_upload(upload_id, package, username, parse_chunk(request, finishing=True))
        return self._created(request, record.digest)

    async def cancel(self, request: web.Request) -> web.Response:
        upload_id, package, username = await self._session(request)
        await self.store.cancel_upload(upload_id, package, username)
        return web.Response(status=204, headers=API_VERSION)
