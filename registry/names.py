"""Pure parsing and validation of the names the OCI Distribution API carries.

Everything that reaches the filesystem or the database is checked here first, so that
no request can name a path outside the registry's root.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .digests import ALGORITHM

# OCI distribution-spec grammar for repository names, tags and digests. Anchored with \Z,
# not $: `$` also matches before a trailing newline, which would let "v1\n" or a digest
# ending in "\n" through to the database and into file names.
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*\Z")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}\Z")
DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)\Z")
SHA256_HEX_RE = re.compile(r"^[a-f0-9]{64}\Z")
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_.-]{0,62}[a-z0-9])?\Z")
UPLOAD_ID_RE = re.compile(r"^[a-f0-9]{32}\Z")
MAX_REPOSITORY_LENGTH = 255


class NameError_(ValueError):
    """A name, tag or digest that does not follow the grammar; `code` is the OCI error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Repository:
    """`<workspace>/<package>`: the workspace is the first path segment, the package the rest."""

    workspace: str
    package: str

    @property
    def name(self) -> str:
        return f"{self.workspace}/{self.package}"


def parse_repository(name: str) -> Repository:
    if len(name) > MAX_REPOSITORY_LENGTH or not REPOSITORY_RE.match(name):
        raise NameError_("NAME_INVALID", f"invalid repository name {name!r}")
    workspace, sep, package = name.partition("/")
    if not sep:
        raise NameError_(
            "NAME_INVALID",
            f"repository name {name!r} has no workspace: use <workspace>/<image>",
        )
    return Repository(workspace, package)


def is_tag(reference: str) -> bool:
    return bool(TAG_RE.match(reference))


def parse_digest(digest: str) -> str:
    """Return the digest if it is a well-formed sha256 digest; the only algorithm stored."""
    m = DIGEST_RE.match(digest)
    if not m:
        raise NameError_("DIGEST_INVALID", f"invalid digest {digest!r}")
    algorithm, encoded = m.groups()
    if algorithm != ALGORITHM:
        raise NameError_("DIGEST_INVALID", f"unsupported digest algorithm {algorithm!r}: use {ALGORITHM}")
    if not SHA256_HEX_RE.match(encoded):
        raise NameError_("DIGEST_INVALID", f"invalid sha256 digest {digest!r}")
    return digest


def parse_reference(reference: str) -> tuple[str | None, str | None]:
    """A manifest reference is a tag or a digest: return (tag, None) or (None, digest)."""
    if ":" in reference:
        return None, parse_digest(reference)
    if is_tag(reference):
        return reference, None
    raise NameError_("TAG_INVALID", f"invalid tag {reference!r}")


def is_slug(value: str) -> bool:
    return bool(SLUG_RE.match(value))


def is_upload_id(value: str) -> bool:
    return bool(UPLOAD_ID_RE.match(value))
