"""A plain HTTP client of the registry's pages (no browser): log in, read the CSRF token, post forms."""
from __future__ import annotations

import re

import requests

from .accounts import TOKENS

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_RE.search(html)
    assert found, "no csrf_token field on the page"
    return found.group(1)


class UiClient:
    def __init__(self, base_url: str) -> None:
        self.base = base_url
        self.http = requests.Session()

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.http.get(self.base + path, timeout=30, **kwargs)

    def post(self, path: str, data: dict, **kwargs) -> requests.Response:
        return self.http.post(self.base + path, data=data, timeout=30, **kwargs)

    def login(self, user: str, token: str | None = None) -> requests.Response:
        form = self.get("/ui/login")
        r = self.post("/ui/login", {"username": user, "token": TOKENS[user] if token is None else token,
                                    "csrf_token": csrf_of(form.text)})
        return r

    def csrf(self, path: str = "/ui/") -> str:
        """The session's CSRF token, as a page (any form on it) carries it."""
        return csrf_of(self.get(path).text)
