"""Blob uploads: `POST /v2/<name>/blobs/uploads/` (monolithic, chunked start, or a cross-package mount),
and `GET`/`PATCH`/`PUT`/`DELETE` on a session."""
from __future__ import annotations

import re
from typing import AsyncIterator

from aiohttp import web

from ..access import allows, repository_or_error
from ..auth import Claims
from ..errors import RegistryError
from ..metadata import Package
from ..names import is_upload_id
from ..store import Store
from ..uploads import BodyInterrupted, UploadSession
from .request_access import API_VERSION, RequestAccess, content_length, digest_param

CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")


def _body(request: web.Request) -> AsyncIterator[bytes]:
    return request.content.iter_any()


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
            "BLOB_UPLOAD_INVALID", f"Content-Range {value!r} spans {end - start + 1} bytes but Content-Length is {length}",
            status=416,
        )
    return start, end


class UploadHandlers:
    def __init__(self, store: Store, access: RequestAccess) -> None:
        self.store = store
        self.access = access

    @staticmethod
    def _headers(request: web.Request, session: UploadSession) -> dict[str, str]:
        name = request.match_info["name"]
        return {
            **API_VERSION,
            "Location": f"/v2/{name}/blobs/uploads/{session.id}",
            "Range": f"0-{max(session.offset - 1, 0)}",
            "Docker-Upload-UUID": session.id,
        }

    @staticmethod
    def _created(request: web.Request, digest: str) -> web.Response:
        name = request.match_info["name"]
        return web.Response(status=201, headers={
            **API_VERSION, "Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest,
        })

    async def _session(self, request: web.Request) -> UploadSession:
        """The caller's own session of this package, once access to push there is confirmed."""
        package, claims = await self.access.package(request, "push")
        upload_id = request.match_info["upload_id"]
        if not is_upload_id(upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session unknown")
        return self.store.upload(upload_id, package, claims.subject)

    async def start(self, request: web.Request) -> web.Response:
        package, claims = await self.access.package(request, "push")
        mounted = await self._try_mount(request, package, claims)
        if mounted is not None:
            return self._created(request, mounted)
        self.store.check_declared_size(content_length(request))
        digest = request.query.get("digest")
        if digest is not None:
            digest = digest_param(digest)
        session = await self.store.start_upload(package, claims.subject)
        if digest is None:
            return web.Response(status=202, headers=self._headers(request, session))
        try:
            await self.store.append(session, _body(request))
        except BodyInterrupted:
            await self.store.cancel_upload(session)  # a monolithic upload nobody can resume
            raise
        await self.store.finish_upload(session, digest)
        return self._created(request, digest)

    async def _try_mount(self, request: web.Request, package: Package, claims: Claims) -> str | None:
        """Mount a blob from another package of the same workspace the credentials may pull from."""
        digest, source = request.query.get("mount"), request.query.get("from")
        if not digest or not source:
            return None
        digest = digest_param(digest)
        try:
            origin = repository_or_error(source)
        except RegistryError:
            return None
        if origin.workspace != package.workspace or not claims.allows(origin.name, "pull"):
            return None
        source_package = await self.store.package(origin.workspace, origin.package)
        principal = claims.principal(self.store.config, origin.workspace)
        if source_package is None or principal is None:
            return None
        if not allows(principal, source_package.repository, "read", "pull"):
            return None
        if await self.store.blob(source_package, digest) is None:
            return None
        return digest if await self.store.mount(package, digest) is not None else None

    async def status(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        return web.Response(status=204, headers=self._headers(request, session))

    async def chunk(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        length = content_length(request)
        span = content_range(request, length)
        await self.store.check_session_size(session, length)
        try:
            appended = await self.store.append(session, _body(request), start=span[0] if span else None)
        except BodyInterrupted as exc:
            appended = exc.received
        if span is not None and appended != span[1] - span[0] + 1:
            # Whatever arrived is kept, whole: the status (and this answer's Range) says where to go on.
            raise RegistryError(
                "BLOB_UPLOAD_INVALID",
                f"Content-Range declared {span[1] - span[0] + 1} bytes but {appended} arrived; the upload keeps them: "
                f"continue from byte {session.offset}",
                headers=self._headers(request, session),
            )
        return web.Response(status=202, headers=self._headers(request, session))

    async def finish(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        digest = digest_param(request.query.get("digest"))
        length = content_length(request)
        await self.store.check_session_size(session, length)
        if length != 0:
            await self.store.append(session, _body(request))
        await self.store.finish_upload(session, digest)
        return self._created(request, digest)

    async def cancel(self, request: web.Request) -> web.Response:
        session = await self._session(request)
        await self.store.cancel_upload(session)
        return web.Response(status=204, headers=API_VERSION)
