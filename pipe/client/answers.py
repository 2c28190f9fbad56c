"""What a registry's answers mean, as pure functions: the HTTP status and the OCI error code become
the failure's kind directly (no re-parsing of text), and a failed connection its kind by the
exception's type. Headers: `Retry-After`, an upload's `Range`.
"""
from __future__ import annotations

import email.utils
import errno
import http.client
import ipaddress
import socket
import ssl
import time
from typing import Iterator, Mapping

import requests
import urllib3.exceptions

from ..errors import Kind, RegistryError, RegistryFailure, registry_words

# The distribution spec's error codes the pipe acts on. The rest (MANIFEST_INVALID, BLOB_UNKNOWN,
# DIGEST_INVALID, ...) mean the registry and the pipe disagree: Kind.OTHER, "not understood".
CODE_KINDS = {
    "UNAUTHORIZED": Kind.UNAUTHORIZED,
    "DENIED": Kind.DENIED,
    "NAME_UNKNOWN": Kind.NAME_UNKNOWN,
    "SIZE_INVALID": Kind.LAYER_TOO_LARGE,
    "TOOMANYREQUESTS": Kind.RATE_LIMITED,
    "UNAVAILABLE": Kind.SERVER_ERROR,
}
# Statuses that say more than any code: the emulator refuses a too-large layer as DENIED with 413
# (so that docker does not retry it), a slow upload as BLOB_UPLOAD_INVALID with 408.
STATUS_KINDS = {413: Kind.LAYER_TOO_LARGE, 408: Kind.UPLOAD_TIME_LIMIT, 429: Kind.RATE_LIMITED}
FALLBACK_STATUS_KINDS = {401: Kind.UNAUTHORIZED, 403: Kind.DENIED}


def first_error(response: requests.Response) -> tuple[str, str]:
    """(code, message) of the first OCI error in the body, ("", "") when there is none."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        errors = []
    if errors and isinstance(errors[0], Mapping):
        return str(errors[0].get("code") or ""), str(errors[0].get("message") or "").strip()
    return "", ""


def answer_text(response: requests.Response) -> str:
    """The registry's error in docker's words (`denied: message`), or the HTTP status: the detail
    every message quotes, so both engines quote a registry alike."""
    code, message = first_error(response)
    if code or message:
        words = code.lower().replace("_", " ")
        return f"{words}: {message}" if words else message
    return f"HTTP {response.status_code} {response.reason or ''}".strip()


def kind_of(status: int, code: str, message: str) -> Kind:
    if status >= 500:
        return Kind.SERVER_ERROR
    kind = STATUS_KINDS.get(status) or CODE_KINDS.get(code.upper()) or FALLBACK_STATUS_KINDS.get(status, Kind.OTHER)
    if kind in (Kind.UNAUTHORIZED, Kind.DENIED, Kind.OTHER) or code.upper() == "BLOB_UPLOAD_UNKNOWN":
        kind = registry_words(message) or kind
    return kind


def failure(response: requests.Response) -> RegistryFailure:
    """A RegistryFailure for an answer that is not what the protocol expects."""
    code, message = first_error(response)
    kind = kind_of(response.status_code, code, message)
    transient = kind in (Kind.RATE_LIMITED, Kind.SERVER_ERROR)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    return RegistryFailure(RegistryError(kind, answer_text(response), transient, retry_after),
                           status=response.status_code)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what it wraps: requests wraps urllib3, which wraps the socket's error."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 16:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        yield current
        pending += [c for c in (current.__cause__, current.__context__, getattr(current, "reason", None))
                    if isinstance(c, BaseException)]
        pending += [a for a in current.args if isinstance(a, BaseException)]


# (types, kind, transient), most telling first: urllib3's NewConnectionError is a ConnectTimeoutError
# even when the socket said "refused", so the socket's own error decides before any time-out does.
CONNECTION_KINDS: list[tuple[tuple[type[BaseException], ...], Kind, bool]] = [
    ((socket.gaierror, urllib3.exceptions.NameResolutionError), Kind.UNREACHABLE, False),
    ((ConnectionRefusedError,), Kind.UNREACHABLE, True),  # a registry restarting, a load balancer rotating
    ((ssl.SSLCertVerificationError,), Kind.UNREACHABLE, False),  # the same certificate tomorrow: no retry
    ((ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError, http.client.RemoteDisconnected,
      http.client.IncompleteRead, urllib3.exceptions.ProtocolError, requests.exceptions.ChunkedEncodingError),
     Kind.CONNECTION_LOST, True),
    ((requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError), Kind.TIMEOUT, True),
]
UNREACHABLE_ERRNOS = (errno.EHOSTUNREACH, errno.ENETUNREACH)


def connection_kind(exc: BaseException) -> tuple[Kind, bool]:
    """(kind, transient) of a request that got no answer."""
    causes = list(_causes(exc))
    if any(isinstance(c, OSError) and c.errno in UNREACHABLE_ERRNOS for c in causes):
        return Kind.UNREACHABLE, False
    for types, kind, transient in CONNECTION_KINDS:
        if any(isinstance(c, types) for c in causes):
            return kind, transient
    return Kind.CONNECTION_LOST, True


def connection_failure(exc: requests.RequestException) -> RegistryFailure:
    kind, transient = connection_kind(exc)
    return RegistryFailure(RegistryError(kind, str(exc), transient))


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


def is_loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if host.count(":") <= 1 or host.startswith("[") else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
