"""Which kind of Bitbucket credential a token looks like, by the prefix Atlassian gives each kind.

Atlassian states the prefixes: API tokens begin `ATAT`, app passwords `ATBB`, repository, project and
workspace access tokens `ATCT`. The container registry takes API tokens with the package scopes and
the step's pipeline credentials; it never took access tokens, and app passwords stopped working on
9 June 2026. Only a kind is ever named, never the token (its prefix is Atlassian's, not the user's).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenKind:
    prefix: str
    name: str  # what it looks like, after "looks like"
    refusal: str  # why the registry does not take it


REFUSED_KINDS = (
    TokenKind("ATCT", "a Bitbucket repository, project or workspace access token",
              "the container registry does not accept access tokens"),
    TokenKind("ATBB", "a Bitbucket app password",
              "the container registry does not accept app passwords (they stopped working on 9 June 2026)"),
)


def refused_kind(token: str) -> TokenKind | None:
    """The kind the registry refuses that `token` looks like, or None (an API token, pipeline credentials,
    anything else)."""
    return next((kind for kind in REFUSED_KINDS if token.startswith(kind.prefix)), None)
