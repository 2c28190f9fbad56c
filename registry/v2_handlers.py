"""Thin handlers for the OCI Distribution API under /v2/."""
from __future__ import annotations

import re
from typing import AsyncIterator

from aiohttp import web

from .access import Challenge, bearer_claims, decide, repository_or_error, unauthorized
from .auth import Claims, Scope, TokenIssuer, can
from .errors import RegistryError
from .manifests import MAX_MANIFEST_BYTES
from .metadata import Package
from .names import NameError_, is_upload_id, parse_digest
from .store import Store
from .uploads import UploadSession

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
CONTENT_RANGE_RE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/\d+|/\*)?$")
PUSH_SCOPE = frozenset({"pull", "push"})


def _digest(value: str | None) -> str:
    if not value:
        raise RegistryError("DIGEST_INVALID", "the digest query parameter is required")
    try:
        return parse_digest(value)
    except NameError_ as exc:
        raise RegistryError(exc.code, str(exc)) from None


def _content_length(request: web.Request) -> int | None:
    value = request.headers.get("Content-Length")
    if value is None:
        return None
    if not value.isdigit():
        raise RegistryError("SIZE_INVALID", f"invalid Content-Length {value!r}")
    return int(value)


class V2Handlers:
    def __init__(self, store: Store, issuer: TokenIssuer) -> None:
        self.store = store
        self.issuer = issuer

    def routes(self) -> list[web.RouteDef]:
        n = "{name:[a-z0-9][a-z0-9._/-]*}"
        return [
            web.get("/v2/", self.ping),
            web.get("/v2/_catalog", self.unsupported),
            web.get(f"/v2/{n}/tags/list", self.unsupported),
            web.post(f"/v2/{n}/blobs/uploads/", self.start_upload),
            web.get(f"/v2/{n}/blobs/uploads/{{upload_id}}", self.upload_status),
            web.patch(f"/v2/{n}/blobs/uploads/{{upload_id}}", self.upload_chunk),
            web.put(f"/v2/{n}/blobs/uploads/{{upload_id}}", self.finish_upload),
            web.delete(f"/v2/{n}/blobs/uploads/{{upload_id}}", self.cancel_upload),
            web.get(f"/v2/{n}/blobs/{{digest}}", self.get_blob, allow_head=False),
            web.head(f"/v2/{n}/blobs/{{digest}}", self.head_blob),
            web.delete(f"/v2/{n}/blobs/{{digest}}", self.unsupported),
            web.get(f"/v2/{n}/manifests/{{reference}}", self.get_manifest, allow_head=False),
            web.head(f"/v2/{n}/manifests/{{reference}}", self.get_manifest),
            web.put(f"/v2/{n}/manifests/{{reference}}", self.put_manifest),
            web.delete(f"/v2/{n}/manifests/{{reference}}", self.unsupported),
        ]

    # -- access -------------------------------------------------------------------------
    def _challenge(self, request: web.Request) -> Challenge:
        return Challenge(f"{request.scheme}://{request.host}/token", self.issuer.service)

    def _claims(self, request: web.Request, scope: Scope | None) -> Claims:
        claims = bearer_claims(self.issuer, request.headers.get("Authorization"))
        if claims is None:
            raise unauthorized(self._challenge(request), scope, "authentication required: log in to the registry")
        return claims

    async def _access(self, request: web.Request, action: str) -> tuple[Package, Claims]:
        repository = repository_or_error(request.match_info["name"])
        scope = Scope("repository", repository.name, PUSH_SCOPE if action == "push" else frozenset({action}))
        claims = self._claims(request, scope)
        package = await self.store.package(repository.workspace, repository.package)
        decide(self.store.config, claims, repository, package, action, self._challenge(request), scope)
        assert package is not None
        return package, claims

    # -- base ---------------------------------------------------------------------------
    async def ping(self, request: web.Request) -> web.Response:
        self._claims(request, None)
        return web.json_response({}, headers=API_VERSION)

    async def unsupported(self, request: web.Request) -> web.Response:
        raise RegistryError(
            "UNSUPPORTED",
            "the Bitbucket container registry does not support this API: "
            "list and delete tags and images through Bitbucket (the management API here)",
        )

    # -- blobs --------------------------------------------------------------------------
    async def _blob(self, request: web.Request, confirm: bool):
        package, _ = await self._access(request, "pull")
        digest = _digest(request.match_info["digest"])
        blob = await self.store.blob(package, digest, confirm=confirm)
        if blob is None:
            raise RegistryError("BLOB_UNKNOWN", f"blob {digest} is not in {package.workspace}/{package.name}")
        return package, blob

    async def head_blob(self, request: web.Request) -> web.Response:
        _, blob = await self._blob(request, confirm=True)
        return web.Response(headers={
            **API_VERSION,
            "Content-Length": str(blob.size),
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": blob.digest,
            "Accept-Ranges": "bytes",
        })

    async def get_blob(self, request: web.Request) -> web.StreamResponse:
        package, blob = await self._blob(request, confirm=False)
        return web.FileResponse(
            self.store.blob_path(package, blob.digest),
            chunk_size=1024 * 1024,
            headers={**API_VERSION, "Content-Type": "application/octet-stream", "Docker-Content-Digest": blob.digest},
        )

    # -- uploads ------------------------------------------------------------------------
    def _upload_headers(self, request: web.Request, session: UploadSession) -> dict[str, str]:
        name = request.match_info["name"]
        return {
            **API_VERSION,
            "Location": f"/v2/{name}/blobs/uploads/{session.id}",
            "Range": f"0-{max(session.offset - 1, 0)}",
            "Docker-Upload-UUID": session.id,
        }

    def _session(self, request: web.Request, package: Package, claims: Claims) -> UploadSession:
        upload_id = request.match_info["upload_id"]
        if not is_upload_id(upload_id):
            raise RegistryError("BLOB_UPLOAD_UNKNOWN", "upload session unknown")
        return self.store.upload(upload_id, package, claims.subject)

    @staticmethod
    def _body(request: web.Request) -> AsyncIterator[bytes]:
        return request.content.iter_any()

    def _created(self, request: web.Request, digest: str) -> web.Response:
        name = request.match_info["name"]
        return web.Response(status=201, headers={
            **API_VERSION, "Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest,
        })

    async def start_upload(self, request: web.Request) -> web.Response:
        package, claims = await self._access(request, "push")
        mounted = await self._try_mount(request, package, claims)
        if mounted is not None:
            return self._created(request, mounted)
        self.store.check_declared_size(_content_length(request))
        digest = request.query.get("digest")
        if digest is not None:
            digest = _digest(digest)
        session = await self.store.start_upload(package, claims.subject)
        if digest is None:
            return web.Response(status=202, headers=self._upload_headers(request, session))
        await self.store.append(session, self._body(request))
        await self.store.finish_upload(session, digest)
        return self._created(request, digest)

    async def _try_mount(self, request: web.Request, package: Package, claims: Claims) -> str | None:
        """Mount a blob from another package of the same workspace the member may pull from."""
        digest, source = request.query.get("mount"), request.query.get("from")
        if not digest or not source:
            return None
        digest = _digest(digest)
        try:
            origin = repository_or_error(source)
        except RegistryError:
            return None
        if origin.workspace != package.workspace or not claims.allows(origin.name, "pull"):
            return None
        source_package = await self.store.package(origin.workspace, origin.package)
        principal = claims.principal(self.store.config, origin.workspace)
        if source_package is None or principal is None or not can(principal.role_on(source_package.repository), "pull"):
            return None
        if await self.store.blob(source_package, digest) is None:
            return None
        return digest if await self.store.mount(package, digest) is not None else None

    async def upload_status(self, request: web.Request) -> web.Response:
        package, claims = await self._access(request, "push")
        session = self._session(request, package, claims)
        return web.Response(status=204, headers=self._upload_headers(request, session))

    async def upload_chunk(self, request: web.Request) -> web.Response:
        package, claims = await self._access(request, "push")
        session = self._session(request, package, claims)
        length = _content_length(request)
        start = end = None
        content_range = request.headers.get("Content-Range")
        if content_range:
            m = CONTENT_RANGE_RE.match(content_range.strip())
            if not m or int(m.group(2)) < int(m.group(1)):
                raise RegistryError("BLOB_UPLOAD_INVALID", f"invalid Content-Range {content_range!r}: use start-end", status=416)
            start, end = int(m.group(1)), int(m.group(2))
            if length is not None and length != end - start + 1:
                raise RegistryError(
                    "BLOB_UPLOAD_INVALID",
                    f"Content-Range {content_range!r} spans {end - start + 1} bytes but Content-Length is {length}",
                    status=416,
                )
        await self.store.check_session_size(session, length)
        appended = await self.store.append(session, self._body(request), start=start)
        if start is not None and appended != end - start + 1:
            await self.store.cancel_upload(session)
            raise RegistryError(
                "BLOB_UPLOAD_INVALID", f"Content-Range declared {end - start + 1} bytes but {appended} arrived: upload discarded"
            )
        return web.Response(status=202, headers=self._upload_headers(request, session))

    async def finish_upload(self, request: web.Request) -> web.Response:
        package, claims = await self._access(request, "push")
        session = self._session(request, package, claims)
        digest = _digest(request.query.get("digest"))
        length = _content_length(request)
        await self.store.check_session_size(session, length)
        if length != 0:
            await self.store.append(session, self._body(request))
        await self.store.finish_upload(session, digest)
        return self._created(request, digest)

    async def cancel_upload(self, request: web.Request) -> web.Response:
        package, claims = await self._access(request, "push")
        session = self._session(request, package, claims)
        await self.store.cancel_upload(session)
        return web.Response(status=204, headers=API_VERSION)

    # -- manifests ----------------------------------------------------------------------
    async def get_manifest(self, request: web.Request) -> web.Response:
        package, _ = await self._access(request, "pull")
        try:
            record = await self.store.resolve(package, request.match_info["reference"])
        except NameError_ as exc:
            raise RegistryError(exc.code, str(exc)) from None
        if record is None:
            raise RegistryError(
                "MANIFEST_UNKNOWN", f"manifest {request.match_info['reference']} is not in {package.workspace}/{package.name}"
            )
        headers = {
            **API_VERSION,
            "Content-Type": record.media_type,
            "Docker-Content-Digest": record.digest,
            "Content-Length": str(len(record.body)),
            "ETag": f'"{record.digest}"',
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=record.body, headers=headers)

    async def put_manifest(self, request: web.Request) -> web.Response:
        package, _ = await self._access(request, "push")
        length = _content_length(request)
        if length is not None and length > MAX_MANIFEST_BYTES:
            raise RegistryError("MANIFEST_INVALID", f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", status=413)
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > MAX_MANIFEST_BYTES:
                raise RegistryError("MANIFEST_INVALID", f"manifest is larger than {MAX_MANIFEST_BYTES} bytes", status=413)
        try:
            digest, _ = await self.store.put_manifest(
                package, request.match_info["reference"], bytes(body), request.headers.get("Content-Type")
            )
        except NameError_ as exc:
            raise RegistryError(exc.code, str(exc)) from None
        name = request.match_info["name"]
        return web.Response(status=201, headers={
            **API_VERSION, "Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": digest,
        })
