"""The Docker daemon's text of a registry error, classified.

The daemon reports registry errors as text (`errorDetail.message` in the push stream, the
`explanation` of a failed /auth call), e.g. `denied: ...`, `name unknown: ...`,
`received unexpected HTTP status: 503 Service Unavailable`,
`Get "http://host/v2/": dial tcp ...: connect: connection refused`; `classify` turns that text into a
`RegistryError` (kind, transient or not, a Retry-After hint) with the regular expressions below.
"""
from __future__ import annotations

import re

from ..errors import REGISTRY_WORDS, Kind, RegistryError, any_of

# The daemon's text, in order: the first rule that matches wins. The emulator answers a too-large
# layer with DENIED (so that docker does not retry it) and an expired upload with
# BLOB_UPLOAD_INVALID/UNKNOWN, so size and time rules come before the generic denied/unknown ones.
_RULES: list[tuple[Kind, re.Pattern[str], bool]] = [
    *((kind, pattern, False) for kind, pattern in REGISTRY_WORDS),
    (Kind.LAYER_TOO_LARGE, any_of(r"size invalid", r"size_invalid",
                                  r"exceeds? (?:the )?(?:registry's )?(?:size )?limit",
                                r"limit of \d+ bytes", r"too large", r"HTTP 413\b", r"\b413 Request Entity",
                                r"payload.too.large"), False),
    (Kind.UPLOAD_TIME_LIMIT, any_of(r"time limit", r"upload (?:took|exceeded) .*(?:second|minute)", r"HTTP 408\b",
                                  r"\b408 Request Timeout"), False),
    (Kind.DENIED, any_of(r"^denied\b", r"\bdenied:", r"requested access to the resource is denied",
                       r"insufficient_scope", r"HTTP 403\b", r"status:? 403\b", r"\b403 Forbidden"), False),
    (Kind.NAME_UNKNOWN, any_of(r"name unknown", r"name_unknown", r"repository name not known",
                             r"package .* does not exist"), False),
    (Kind.UNAUTHORIZED, any_of(r"unauthorized", r"authentication required", r"HTTP 401\b", r"status:? 401\b",
                             r"\b401 Unauthorized", r"incorrect username or password"), False),
    (Kind.RATE_LIMITED, any_of(r"toomanyrequests", r"too many requests", r"HTTP 429\b", r"status:? 429\b",
                             r"rate.limit"), True),
    (Kind.SERVER_ERROR, any_of(r"HTTP status:? 5\d\d", r"HTTP 5\d\d\b", r"status:? 5\d\d\b",
                             r"\b5\d\d (?:Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout)",
                             r"^unavailable\b", r"\bunavailable:", r"internal server error"), True),
    (Kind.UNREACHABLE, any_of(r"no such host", r"server misbehaving", r"no route to host",
                            r"network is unreachable", r"name or service not known"), False),
    # Refused is transient: a registry restarting, a load balancer rotating.
    (Kind.UNREACHABLE, any_of(r"connection refused"), True),
    (Kind.CONNECTION_LOST, any_of(r"connection reset", r"broken pipe", r"use of closed network connection",
                                r"\bEOF\b", r"server closed", r"connection aborted", r"connection closed",
                                r"remote end closed", r"protocol error"), True),
    (Kind.TIMEOUT, any_of(r"timed? ?out", r"timeout", r"deadline exceeded"), True),
]

_RETRY_AFTER = re.compile(r"retry[- ]after\D{0,3}(\d+(?:\.\d+)?)", re.IGNORECASE)


def classify(message: str, status: int | None = None) -> RegistryError:
    """Classify the daemon's text of a registry error (plus the HTTP status of a failed daemon call)."""
    text = (message or "").strip()
    retry_after = None
    match = _RETRY_AFTER.search(text)
    if match:
        retry_after = float(match.group(1))
    for kind, pattern, transient in _RULES:
        if pattern.search(text):
            return RegistryError(kind, text, transient, retry_after)
    if status == 401:
        return RegistryError(Kind.UNAUTHORIZED, text, False)
    if status == 403:
        return RegistryError(Kind.DENIED, text, False)
    return RegistryError(Kind.OTHER, text, False)
