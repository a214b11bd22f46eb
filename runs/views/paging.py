"""Numbered pages over a queryset, with a known total when the caller already counted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Page:
    number: int
    per_page: int
    total: int
    items: list[Any]

    @property
    def num_pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages

    @property
    def previous_number(self) -> int:
        return self.number - 1

    @property
    def next_number(self) -> int:
        return self.number + 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * self.per_page + 1 if self.items else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * self.per_page + len(self.items)


def page_of(rows, number: int, per_page: int, total: int | None = None) -> Page:
    """Page ``number`` (clamped to the last page) of ``rows``: one COUNT unless given, one
    LIMIT/OFFSET query."""
    total = rows.count() if total is None else total
    last = max(1, math.ceil(total / per_page))
    number = min(max(1, number), last)
    start = (number - 1) * per_page
    return Page(number=number, per_page=per_page, total=total,
                items=list(rows[start:start + per_page]))
