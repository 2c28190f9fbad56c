"""Paging of long lists: pure arithmetic, so a bad `?page=` can never fail a request."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    number: int  # 1-based
    pages: int
    total: int
    start: int  # slice bounds into the full list
    end: int

    @property
    def previous(self) -> int | None:
        return self.number - 1 if self.number > 1 else None

    @property
    def next(self) -> int | None:
        return self.number + 1 if self.number < self.pages else None


def page_of(total: int, requested: str | None, per_page: int) -> Page:
    """The requested page, clamped to those that exist (a list of 0 items has one, empty page)."""
    pages = max(1, -(-total // per_page))
    try:
        number = int(requested) if requested else 1
    except ValueError:
        number = 1
    number = min(max(number, 1), pages)
    start = (number - 1) * per_page
    return Page(number, pages, total, start, min(start + per_page, total))
