"""The distribution API as the native engine uses it: one method per HTTP exchange (blobs, uploads,
mounts, manifests) for one repository of one registry, with the pipe's credentials.

It knows nothing of daemons or archives. Failures come out as `RegistryFailure`, their kind read off
the status and the OCI error code (answers.py), already retried by the transport when transient.
"""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterable
from urllib.parse import urlencode, urlsplit

from ..errors import Kind, RegistryError, RegistryFailure
from ..oci import ACCEPTED_MANIFESTS, digest_of, stated_media_type
from ..retry import REQUEST_RETRIES, RetryPolicy
from ..scrubbing import Secret
from .answers import answer_text, failure, parse_range_end
from .auth import Anonymous, for_challenge, parse_challenge
from .transport import Transport, raise_unless

log = logging.getLogger(__name__)

CONFIG_LIMIT = 16 * 1024 * 1024  # a config read to learn from is small; a larger blob is not one


class UploadLost(Exception):
    """The registry no longer has the upload session (distribution cancels it after a partial chunk):
    the blob must be sent again from its first byte."""


class ChunkedUploadRefused(Exception):
    """The registry does not take `PATCH` with `Content-Range`: send the blob in one PUT instead."""


class RegistryClient:
    """One repository of one registry; thread-safe for parallel uploads."""

    def __init__(self, registry: str, repository: str, username: str, token: Secret, *, ca_file: str | None = None,
                 policy: RetryPolicy = REQUEST_RETRIES, sleep: Callable[[float], None] = time.sleep,
                 pull_from: Iterable[str] = (), parallel: int = 4, actions: str = "pull,push") -> None:
        self.registry = registry
        self.actions = actions  # "pull" for a source registry: the pipe asks for no more than it needs
        self.repository = repository
        self.username = username
        self._token = token
        self.pull_from = sorted(set(pull_from) - {repository})
        self.parallel = parallel
        self.transport = Transport(registry, ca_file=ca_file, policy=policy, sleep=sleep, parallel=parallel)
        self.sleep = sleep  # the transfer waits with it too, between resumes
        self.login = f"Login to {registry}"

    # -- connection and auth -------------------------------------------------------------------
    def connect(self) -> None:
        """Find the scheme, answer the registry's challenge and confirm the credentials with it."""
        response = self.transport.discover(self.login)
        if response.status_code == 401:
            challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            self.transport.auth = for_challenge(
                challenge, self.username, self._token, self._scopes(),
                lambda url, credentials: self.transport.fetch_token(url, credentials, self.login))
            # The token has the credentials' answer; /v2/ with it confirms them.
            self.transport.send("GET", "/v2/", retry=False, what=self.login)
        elif response.status_code != 200:
            raise failure(response)
        else:
            self.transport.auth = Anonymous()

    def _scopes(self) -> list[str]:
        return [f"repository:{self.repository}:{self.actions}"] + [f"repository:{name}:pull" for name in self.pull_from]

    def url(self, path_or_url: str) -> str:
        return self.transport.url(path_or_url)

    # -- blobs ---------------------------------------------------------------------------------
    def has_blob(self, digest: str, repository: str | None = None) -> int | None:
        """The blob's size when the registry has it in `repository`, else None."""
        response = self.transport.send("HEAD", f"/v2/{repository or self.repository}/blobs/{digest}", ok=(404,))
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length") or 0)

    def has_blobs(self, digests: Iterable[str]) -> dict[str, int | None]:
        """`has_blob` of each digest in this repository, `parallel` HEADs at a time (a plan asks about
        every layer before anything else can start)."""
        wanted = list(dict.fromkeys(digests))
        if len(wanted) < 2:
            return {digest: self.has_blob(digest) for digest in wanted}
        with ThreadPoolExecutor(min(self.parallel, len(wanted)), thread_name_prefix="head") as pool:
            return dict(zip(wanted, pool.map(self.has_blob, wanted), strict=True))

    def get_blob(self, digest: str, repository: str | None = None, limit: int = CONFIG_LIMIT) -> bytes | None:
        """A small blob (a config), or None when absent or larger than `limit`."""
        response = self.transport.send("GET", f"/v2/{repository or self.repository}/blobs/{digest}", ok=(404,),
                                       stream=True)
        with response:
            if response.status_code == 404:
                return None
            body = response.raw.read(limit + 1, decode_content=True)
        return None if len(body) > limit else body

    def open_blob(self, digest: str, start: int = 0, repository: str | None = None) -> Any:
        """A blob's body as a stream from byte `start` (a `Range` request after a dropped read); the
        caller reads `.raw` and closes it. A registry that ignores the range is a failure here."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        response = self.transport.send("GET", f"/v2/{repository or self.repository}/blobs/{digest}", stream=True,
                                       headers=headers)
        if start and response.status_code != 206:
            response.close()
            raise RegistryFailure(RegistryError(Kind.OTHER, f"the registry answered a range request for {digest} "
                                                f"with HTTP {response.status_code}, not 206", False))
        return response

    def mount(self, digest: str, source: str) -> bool:
        """Mount `digest` from `source` (same registry); False when the registry offers an upload instead."""
        query = urlencode({"mount": digest, "from": source})
        response = self.transport.send("POST", f"/v2/{self.repository}/blobs/uploads/?{query}",
                                       headers={"Content-Length": "0"})
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if response.status_code == 202 and location:
            self.cancel(location)
        return False

    # -- uploads -------------------------------------------------------------------------------
    def start_upload(self) -> str:
        response = self.transport.send("POST", f"/v2/{self.repository}/blobs/uploads/", headers={"Content-Length": "0"})
        location = response.headers.get("Location")
        if response.status_code != 202 or not location:
            raise_unless(response, 202)
            raise RegistryFailure(RegistryError(
                Kind.OTHER, f"starting an upload answered HTTP {response.status_code} without a Location", False))
        return self.url(location)

    def check_push_access(self) -> None:
        """Open and cancel an upload session: a missing package or a token without push fails here,
        before any layer is read."""
        self.cancel(self.start_upload())

    def granted_push(self) -> bool | None:
        """Whether the registry's bearer token grants push on this repository, read off its `access`
        claim (distribution's token format) without a request; None when the registry does not say
        (HTTP Basic, or an opaque token). A dry run checks push access this way: no upload is started."""
        granted = getattr(self.transport.auth, "granted", None)
        actions = granted(self.repository) if granted else None
        return None if actions is None else "push" in actions

    def cancel(self, location: str) -> None:
        try:
            self.transport.send("DELETE", location, retry=False, ok=(404, 405))
        except RegistryFailure as exc:
            log.debug("Cancelling upload %s failed: %s", urlsplit(location).path, exc)

    def upload_status(self, location: str) -> tuple[int, str]:
        """How many bytes the registry holds for the upload, and its current location."""
        response = self.transport.send("GET", location, ok=(404,))
        if response.status_code == 404:
            raise UploadLost(answer_text(response))
        offset = parse_range_end(response.headers.get("Range"))
        return (offset or 0), self.url(response.headers.get("Location") or location)

    def patch(self, location: str, data: Any, start: int) -> str:
        """Append `data` (bytes, or a body with a length that streams: engine/chunks.py) at byte `start`
        of the upload, once; the next location. A failure is for the transfer to resume (its body may
        have been half taken), so the transport does not re-send it."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        if data:
            headers["Content-Range"] = f"{start}-{start + len(data) - 1}"
        response = self.transport.send("PATCH", location, retry=False, ok=(400, 405, 416, 501), headers=headers,
                                       data=data)
        if response.status_code == 202:
            return self.url(response.headers.get("Location") or location)
        if response.status_code in (405, 501) or (response.status_code == 400 and
                                                  "unsupported" in answer_text(response).lower()):
            raise ChunkedUploadRefused(answer_text(response))
        if response.status_code == 416:  # the registry holds another offset than we think: resume
            raise RegistryFailure(RegistryError(Kind.CONNECTION_LOST, answer_text(response), True), status=416)
        raise failure(response)

    def finish_upload(self, location: str, digest: str, body: Any = b"", length: int = 0) -> None:
        separator = "&" if "?" in location else "?"
        response = self.transport.send("PUT", f"{location}{separator}{urlencode({'digest': digest})}",
                                       headers={"Content-Type": "application/octet-stream",
                                                "Content-Length": str(length)},
                                       data=body, retry=not hasattr(body, "read"))
        raise_unless(response, 201)

    def upload_whole(self, data: bytes, digest: str) -> None:
        """A small blob (a config) in two requests: POST, then PUT with the body."""
        self.finish_upload(self.start_upload(), digest, data, len(data))

    # -- manifests -----------------------------------------------------------------------------
    def get_manifest(self, reference: str, repository: str | None = None) -> tuple[str, bytes] | None:
        """(media type, exact bytes) of a manifest, or None when the tag or manifest is unknown."""
        response = self.transport.send("GET", f"/v2/{repository or self.repository}/manifests/{reference}",
                                       headers={"Accept": ", ".join(ACCEPTED_MANIFESTS)}, ok=(404,))
        if response.status_code == 404:
            return None
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return media_type or stated_media_type(response.content), response.content

    def head_manifest(self, reference: str) -> str | None:
        """The digest a tag (or digest) of this repository points at now, or None when it is unknown. A
        registry that omits `Docker-Content-Digest` on HEAD is asked again with a GET and the bytes hashed."""
        path = f"/v2/{self.repository}/manifests/{reference}"
        headers = {"Accept": ", ".join(ACCEPTED_MANIFESTS)}
        response = self.transport.send("HEAD", path, headers=headers, ok=(404,))
        if response.status_code == 404:
            return None
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        found = self.get_manifest(reference)
        return None if found is None else digest_of(found[1])

    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str | None:
        """PUT a manifest; the digest the registry reports (None when it reports none)."""
        response = self.transport.send("PUT", f"/v2/{self.repository}/manifests/{reference}",
                                       headers={"Content-Type": media_type}, data=body)
        raise_unless(response, 201)
        return response.headers.get("Docker-Content-Digest")

    def close(self) -> None:
        self.transport.close()
