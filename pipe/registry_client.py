"""The registry, spoken to directly through the OCI distribution API: the native engine's only way out.

One module holds the whole conversation: the `WWW-Authenticate` challenge, the bearer token (fetched
with the pipe's credentials, renewed when it expires or is refused), blobs (HEAD, GET, mount),
uploads (POST, chunked PATCH with `Content-Range`, status GET to resume, PUT to finish, DELETE) and
manifests (GET, PUT). It knows nothing of daemons or archives.

Failures come out as `RegistryFailure` carrying the same `RegistryError` the daemon engine produces
(`classify` of `<code in words>: <message>`, as docker words the registry's errors), so both engines
end in the same messages. Transient failures (connection lost, time-outs, 429, 5xx) are retried here
with backoff and `Retry-After`; an upload is resumed from where the registry says it stands.
"""
from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlencode, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from .errors import Kind, RegistryError, RegistryFailure, classify
from .retry import RetryPolicy
from .scrubbing import Secret

log = logging.getLogger(__name__)

MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
)
CONNECT_TIMEOUT = 15.0
# A chunk of 16 MiB needs a few seconds even on a slow uplink; a registry silent for longer than
# this is treated as a dropped connection, and the upload resumes from what it acknowledged.
READ_TIMEOUT = 120.0
TOKEN_MARGIN = 10.0  # renew a token this many seconds before it expires


class UploadLost(Exception):
    """The registry no longer has the upload session (distribution cancels it after a partial chunk):
    the blob must be sent again from its first byte."""


class ChunkedUploadRefused(Exception):
    """The registry does not take `PATCH` with `Content-Range`: send the blob in one PUT instead."""


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "bearer", "basic" or "" (no auth)
    realm: str = ""
    service: str = ""


def parse_challenge(header: str | None) -> Challenge:
    """`Bearer realm="https://host/token",service="x"` -> Challenge (pure, unit-tested)."""
    if not header:
        return Challenge("")
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for part in _split_params(rest):
        key, _, value = part.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return Challenge(scheme.lower(), params.get("realm", ""), params.get("service", ""))


def _split_params(text: str) -> Iterable[str]:
    """Split `a="x,y",b=z` on the commas outside quotes."""
    part, quoted = [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            yield "".join(part)
            part = []
        else:
            part.append(char)
    if part:
        yield "".join(part)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a `Retry-After` header: a number or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0.0, when - (time.time() if now is None else now))


def parse_range_end(value: str | None) -> int | None:
    """The number of bytes a `Range: 0-N` upload status acknowledges (N + 1), or None without one.

    `0-0` is ambiguous in the wild (distribution says it for an empty upload too); it is read as 0,
    and a registry that really holds one byte answers the next PATCH with 416, which resumes again.
    """
    if not value:
        return None
    start, _, end = value.strip().removeprefix("bytes=").partition("-")
    if not start.isdigit() or not end.isdigit():
        return None
    return 0 if int(end) == 0 else int(end) + 1


def error_text(response: requests.Response) -> str:
    """The registry's error in docker's words: `denied: message`, or the HTTP status."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    if errors and isinstance(errors[0], Mapping):
        first = errors[0]
        code = str(first.get("code") or "").lower().replace("_", " ")
        message = str(first.get("message") or "").strip()
        return f"{code}: {message}" if code else message
    reason = response.reason or ""
    return f"HTTP {response.status_code} {reason}".strip()


def failure(response: requests.Response) -> RegistryFailure:
    """A RegistryFailure for an answer that is not what the protocol expects."""
    text = error_text(response)
    error = classify(text, response.status_code)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if response.status_code == 429 or response.status_code >= 500:
        kind = error.kind if error.kind in (Kind.RATE_LIMITED, Kind.SERVER_ERROR) else (
            Kind.RATE_LIMITED if response.status_code == 429 else Kind.SERVER_ERROR)
        error = RegistryError(kind, text, True, retry_after)
    elif retry_after is not None:
        error = RegistryError(error.kind, error.detail, error.transient, retry_after)
    return RegistryFailure(error, status=response.status_code)


def connection_failure(exc: requests.RequestException) -> RegistryFailure:
    error = classify(str(exc))
    if error.kind is Kind.OTHER:
        kind = Kind.TIMEOUT if isinstance(exc, requests.Timeout) else Kind.CONNECTION_LOST
        error = RegistryError(kind, str(exc), True)
    return RegistryFailure(error)


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class CaSession(requests.Session):
    """A session whose CA file (REGISTRY_CA_FILE) wins over the environment's.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's own `verify`; the
    environment still gives the proxies.
    """

    def __init__(self, ca_file: str | None) -> None:
        super().__init__()
        self.ca_file = ca_file
        if ca_file:
            self.verify = ca_file

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_file:
            settings["verify"] = self.ca_file
        return settings


class RegistryClient:
    """One repository of one registry, with the pipe's credentials; thread-safe for parallel uploads."""

    def __init__(
        self,
        registry: str,
        repository: str,
        username: str,
        token: Secret,
        *,
        ca_file: str | None = None,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        pull_from: Iterable[str] = (),
        parallel: int = 4,
    ) -> None:
        self.registry = registry
        self.repository = repository
        self.username = username
        self._token = token
        self.policy = policy
        self.sleep = sleep
        self.pull_from = sorted(set(pull_from) - {repository})
        self.session = CaSession(ca_file)
        self.session.trust_env = True
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=parallel + 4, max_retries=0)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.ca_file = ca_file
        self.base = f"https://{registry}"
        self._challenge: Challenge | None = None
        self._bearer: str | None = None
        self._bearer_expires = 0.0
        self._auth_lock = threading.Lock()
        self.chunked_refused = False  # set once the registry refused a PATCH: later blobs go whole

    # -- connection and auth -------------------------------------------------------------------
    def connect(self) -> None:
        """Find the scheme (https; plain http only on loopback, as docker allows) and log in."""
        try:
            response = self.session.get(f"{self.base}/v2/", timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.exceptions.SSLError as exc:
            if self.ca_file or not is_loopback(self.registry):  # a CA file given: TLS was meant
                raise connection_failure(exc) from exc
            self.base = f"http://{self.registry}"
            response = self._get_plain_v2()
        except requests.ConnectionError as exc:
            if not is_loopback(self.registry):
                raise connection_failure(exc) from exc
            self.base = f"http://{self.registry}"
            response = self._get_plain_v2()
        if response.status_code == 401:
            self._challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
            self._authenticate()
            # The token has the credentials' answer; /v2/ with it confirms them.
            check = self._send("GET", "/v2/", retry=False)
            if check.status_code != 200:
                raise failure(check)
        elif response.status_code != 200:
            raise failure(response)
        else:
            self._challenge = Challenge("")

    def _get_plain_v2(self) -> requests.Response:
        try:
            return self.session.get(f"{self.base}/v2/", timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as exc:
            raise connection_failure(exc) from exc

    def _scopes(self) -> list[str]:
        return [f"repository:{self.repository}:pull,push"] + [f"repository:{name}:pull" for name in self.pull_from]

    def _authenticate(self) -> None:
        challenge = self._challenge
        if challenge is None or challenge.scheme != "bearer":
            return
        query = [("service", challenge.service)] if challenge.service else []
        query += [("scope", scope) for scope in self._scopes()]
        url = f"{challenge.realm}{'&' if '?' in challenge.realm else '?'}{urlencode(query)}"
        try:
            response = self.session.get(url, auth=(self.username, self._token.reveal()),
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.RequestException as exc:
            raise connection_failure(exc) from exc
        if response.status_code != 200:
            raise failure(response)
        try:
            body = response.json()
            token = body.get("token") or body.get("access_token")
            expires_in = float(body.get("expires_in") or 60)
        except (ValueError, AttributeError, TypeError) as exc:
            raise RegistryFailure(RegistryError(Kind.OTHER, f"the token endpoint {challenge.realm} answered "
                                                            "without a token", False)) from exc
        if not token:
            raise RegistryFailure(RegistryError(Kind.OTHER, "the token endpoint answered without a token", False))
        self._bearer = str(token)
        # Renew a little before expiry (a quarter of a short lifetime), so long pushes rarely meet a 401.
        self._bearer_expires = time.monotonic() + expires_in - min(TOKEN_MARGIN, expires_in / 4)

    def _authorization(self) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None or not challenge.scheme:
            return {}
        if challenge.scheme == "basic":
            return {}  # requests adds it from session.auth
        with self._auth_lock:
            if self._bearer is None or time.monotonic() > self._bearer_expires:
                if self._bearer is not None:
                    log.debug("The registry token is about to expire: fetching a new one")
                self._authenticate()
            return {"Authorization": f"Bearer {self._bearer}"}

    def _renew(self, stale: str | None) -> None:
        with self._auth_lock:
            if self._bearer == stale:
                log.debug("The registry refused the token (expired?): fetching a new one")
                self._authenticate()

    # -- requests ------------------------------------------------------------------------------
    def url(self, path_or_url: str) -> str:
        return urljoin(self.base + "/", path_or_url)

    def _send(self, method: str, path: str, *, retry: bool = True, ok: tuple[int, ...] = (), **kwargs: Any) -> requests.Response:
        """One request with auth; renews the token once on 401; retries transient failures when `retry`."""
        if self._challenge is not None and self._challenge.scheme == "basic":
            kwargs.setdefault("auth", (self.username, self._token.reveal()))
        extra_headers = kwargs.pop("headers", {})
        attempt = 0
        waited = 0.0
        renewed = False
        while True:
            attempt += 1
            stale = self._bearer
            headers = {**extra_headers, **self._authorization()}
            try:
                response = self.session.request(method, self.url(path), headers=headers,
                                                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), **kwargs)
            except requests.RequestException as exc:
                problem = connection_failure(exc)
            else:
                if response.status_code == 401 and not renewed and self._challenge and self._challenge.scheme == "bearer":
                    # An expired token: fetch a new one once and send the same request again.
                    renewed = True
                    self._renew(stale)
                    attempt -= 1
                    continue
                if response.status_code < 400 or response.status_code in ok:
                    return response
                problem = failure(response)
            if not (retry and problem.transient) or attempt >= self.policy.attempts:
                raise problem
            wait = self.policy.delay(attempt, problem.retry_after)
            if waited + wait > self.policy.max_total_wait:
                raise problem
            log.warning("%s %s failed (%s); retrying in %.0f s (attempt %d of %d)",
                        method, urlsplit(self.url(path)).path, problem, wait, attempt + 1, self.policy.attempts)
            self.sleep(wait)
            waited += wait

    # -- blobs and manifests -------------------------------------------------------------------
    def has_blob(self, digest: str, repository: str | None = None) -> int | None:
        """The blob's size when the registry has it in `repository`, else None."""
        response = self._send("HEAD", f"/v2/{repository or self.repository}/blobs/{digest}", ok=(404,))
        if response.status_code == 404:
            return None
        return int(response.headers.get("Content-Length") or 0)

    def get_blob(self, digest: str, repository: str | None = None, limit: int = 16 * 1024 * 1024) -> bytes | None:
        """A small blob (a config), or None when absent."""
        response = self._send("GET", f"/v2/{repository or self.repository}/blobs/{digest}", ok=(404,), stream=True)
        with response:
            if response.status_code == 404:
                return None
            body = response.raw.read(limit + 1, decode_content=True)
        if len(body) > limit:
            return None
        return body

    def get_manifest(self, reference: str, repository: str | None = None) -> tuple[str, bytes] | None:
        """(media type, exact bytes) of a manifest, or None when the tag or manifest is unknown."""
        response = self._send("GET", f"/v2/{repository or self.repository}/manifests/{reference}",
                              headers={"Accept": ", ".join(MANIFEST_TYPES)}, ok=(404,))
        if response.status_code == 404:
            return None
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type:
            try:
                media_type = str(json.loads(response.content).get("mediaType", ""))
            except (ValueError, AttributeError):
                media_type = ""
        return media_type, response.content

    def put_manifest(self, reference: str, media_type: str, body: bytes) -> str | None:
        """PUT a manifest; the digest the registry reports (None when it reports none)."""
        response = self._send("PUT", f"/v2/{self.repository}/manifests/{reference}",
                              headers={"Content-Type": media_type}, data=body)
        if response.status_code != 201 and response.status_code >= 300:
            raise failure(response)
        return response.headers.get("Docker-Content-Digest")

    def mount(self, digest: str, source: str) -> bool:
        """Mount `digest` from `source` (same registry); False when the registry offers an upload instead."""
        response = self._send("POST", f"/v2/{self.repository}/blobs/uploads/?{urlencode({'mount': digest, 'from': source})}",
                              headers={"Content-Length": "0"})
        if response.status_code == 201:
            return True
        location = response.headers.get("Location")
        if response.status_code == 202 and location:
            self.cancel(location)
        return False

    # -- uploads -------------------------------------------------------------------------------
    def start_upload(self) -> str:
        response = self._send("POST", f"/v2/{self.repository}/blobs/uploads/", headers={"Content-Length": "0"})
        location = response.headers.get("Location")
        if response.status_code != 202 or not location:
            raise failure(response) if response.status_code >= 300 else RegistryFailure(RegistryError(
                Kind.OTHER, f"starting an upload answered HTTP {response.status_code} without a Location", False))
        return self.url(location)

    def check_push_access(self) -> None:
        """Open and cancel an upload session: a missing package or a token without push fails here,
        before any layer is read."""
        self.cancel(self.start_upload())

    def cancel(self, location: str) -> None:
        try:
            self._send("DELETE", location, retry=False, ok=(404, 405))
        except RegistryFailure as exc:
            log.debug("Cancelling upload %s failed: %s", urlsplit(location).path, exc)

    def upload_offset(self, location: str) -> tuple[int, str]:
        """How many bytes the registry holds for the upload, and its current location."""
        response = self._send("GET", location, ok=(404,))
        if response.status_code == 404:
            raise UploadLost(error_text(response))
        offset = parse_range_end(response.headers.get("Range"))
        return (offset or 0), self.url(response.headers.get("Location") or location)

    def send_chunk(self, location: str, data: memoryview, start: int,
                   on_sent: Callable[[int], None] | None = None) -> str:
        """Append `data` at `start`; after a dropped connection, a time-out or a 5xx, ask where the
        upload stands and send only what is missing. Returns the next location."""
        sent = 0  # of data, acknowledged by the registry
        attempt = 0
        waited = 0.0
        while sent < len(data) or not data:
            attempt += 1
            end = start + len(data) - 1
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data) - sent)}
            if data:
                headers["Content-Range"] = f"{start + sent}-{end}"
            try:
                response = self._send("PATCH", location, retry=False, ok=(400, 405, 416, 501), headers=headers,
                                      data=data[sent:])
            except RegistryFailure as exc:
                problem = exc
            else:
                if response.status_code == 202:
                    location = self.url(response.headers.get("Location") or location)
                    if on_sent:
                        on_sent(len(data) - sent)
                    return location
                if response.status_code in (405, 501) or (response.status_code == 400 and "unsupported" in
                                                          error_text(response).lower()):
                    raise ChunkedUploadRefused(error_text(response))
                problem = failure(response)
                if response.status_code == 416:
                    problem = RegistryFailure(RegistryError(Kind.CONNECTION_LOST, error_text(response), True))
            if not problem.transient or attempt >= self.policy.attempts + 2:
                raise problem
            wait = self.policy.delay(attempt, problem.retry_after)
            if waited + wait > self.policy.max_total_wait * 2:
                raise problem
            log.warning("Upload of a chunk to %s failed (%s); resuming in %.0f s", self.repository, problem, wait)
            self.sleep(wait)
            waited += wait
            held, location = self.upload_offset(location)
            if held < start or held > start + len(data):
                raise UploadLost(f"the registry holds {held} bytes of the upload, expected {start} to {start + len(data)}")
            acknowledged = held - start
            if on_sent and acknowledged > sent:
                on_sent(acknowledged - sent)
            sent = acknowledged
            log.info("Resuming the upload at byte %d (the registry kept %d bytes of the interrupted chunk)",
                     held, acknowledged)
            if not data:
                break
        return location

    def finish_upload(self, location: str, digest: str, body: Any = b"", length: int = 0) -> None:
        separator = "&" if "?" in location else "?"
        response = self._send("PUT", f"{location}{separator}{urlencode({'digest': digest})}",
                              headers={"Content-Type": "application/octet-stream", "Content-Length": str(length)},
                              data=body, retry=not hasattr(body, "read"))
        if response.status_code != 201 and response.status_code >= 300:
            raise failure(response)

    def upload_whole(self, data: bytes, digest: str) -> None:
        """A small blob (a config) in two requests: POST, then PUT with the body."""
        if self.has_blob(digest) is not None:
            return
        location = self.start_upload()
        self.finish_upload(location, digest, data, len(data))

    def close(self) -> None:
        self.session.close()
