"""Shapes every API shares: the strict request base and one page of a list.

Modules build their request bodies on :class:`RequestBody` and answer lists with
``Page[ItemRead]``, so every body refuses unknown fields and every list pages the same way.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class RequestBody(BaseModel):
    """A request body: unknown fields are refused (422 ``validation_error``), never ignored."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list: its items, how many there are in all, and the window asked for.

    Attributes:
        items: this page's items, in the list's order.
        total: how many items the whole list has.
        limit: the most items a page holds (as asked).
        offset: how many items come before this page (as asked).
    """

    items: list[T]
    total: int
    limit: int
    offset: int
