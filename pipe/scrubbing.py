"""Keeping the registry token out of every output.

Three layers, because output reaches the log by several roads:
- `Secret` holds the token so that repr()/str() of settings, dataclasses and tracebacks show `********`;
- `ScrubbingFilter` rewrites every log record (message, args, traceback text) on the handlers of the
  root logger, which is where the toolkit's logger and the docker SDK's/urllib3's DEBUG logs end up;
- `ScrubbingStream` wraps stdout/stderr for anything printed directly (the toolkit's success/fail,
  warnings, an uncaught traceback).
The token is also scrubbed in the forms it travels in: base64 of `user:token` (HTTP Basic) and the
X-Registry-Auth header the docker SDK builds.
"""
from __future__ import annotations

import base64
import json
import logging
import sys
import traceback
from typing import Iterable, Mapping, TextIO

REDACTED = "********"
# Replacing a one- or two-character "token" would garble every line while protecting nothing.
MIN_SECRET_LENGTH = 3


class Secret:
    """A string that never shows itself by accident; `reveal()` is the one way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED


def encoded_forms(username: str, token: str) -> list[str]:
    """The token plus the encodings that carry it (Basic auth, docker's X-Registry-Auth)."""
    forms = [token]
    forms.append(base64.b64encode(f"{username}:{token}".encode()).decode())
    header = json.dumps({"username": username, "password": token}).encode()
    forms.append(base64.urlsafe_b64encode(header).decode())
    forms.append(json.dumps(token)[1:-1])  # the token as escaped inside JSON text
    return forms


class Scrubber:
    """Replaces every known secret in a text with REDACTED."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if secret and len(secret) >= MIN_SECRET_LENGTH and secret not in self._secrets:
            self._secrets.append(secret)
            # Longest first, so a secret that contains another is replaced whole.
            self._secrets.sort(key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class ScrubbingFilter(logging.Filter):
    """Rewrites a record so that its final text (message and traceback) holds no secret."""

    def __init__(self, scrubber: Scrubber) -> None:
        super().__init__()
        self.scrubber = scrubber

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed format string must not hide the record
            message = f"{record.msg} {record.args}"
        record.msg = self.scrubber.scrub(message)
        record.args = None
        if record.exc_info:
            # Formatter.format uses exc_text when set, so the traceback text is scrubbed too.
            if not record.exc_text:
                record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = self.scrubber.scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self.scrubber.scrub(record.stack_info)
        return True


class ScrubbingStream:
    """A text stream that scrubs whatever is written through it."""

    def __init__(self, stream: TextIO, scrubber: Scrubber) -> None:
        self._stream = stream
        self._scrubber = scrubber

    def write(self, text: str) -> int:
        self._stream.write(self._scrubber.scrub(text))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def install(scrubber: Scrubber) -> None:
    """Scrub the root logger's handlers and the process's stdout/stderr (idempotent)."""
    if not isinstance(sys.stdout, ScrubbingStream):
        sys.stdout = ScrubbingStream(sys.stdout, scrubber)  # type: ignore[assignment]
    if not isinstance(sys.stderr, ScrubbingStream):
        sys.stderr = ScrubbingStream(sys.stderr, scrubber)  # type: ignore[assignment]
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubbingFilter) for f in handler.filters):
            handler.addFilter(ScrubbingFilter(scrubber))
        stream = getattr(handler, "stream", None)
        if stream is not None and not isinstance(stream, ScrubbingStream):
            handler.setStream(ScrubbingStream(stream, scrubber))  # type: ignore[attr-defined]


def scrub_credentials(environ: Mapping[str, str]) -> Scrubber:
    """Install, before anything can be printed (validation messages included), the scrubbing of the pipe's
    token and SOURCE_PASSWORD, in every form they travel in."""
    scrubber = Scrubber(encoded_forms(environ.get("BITBUCKET_PACKAGES_USERNAME") or "",
                                      environ.get("BITBUCKET_PACKAGES_TOKEN") or ""))
    if (environ.get("SOURCE_PASSWORD") or "").strip():
        for form in encoded_forms((environ.get("SOURCE_USERNAME") or "").strip(),
                                  (environ.get("SOURCE_PASSWORD") or "").strip()):
            scrubber.add(form)
    install(scrubber)
    return scrubber
