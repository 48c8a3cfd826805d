"""Event contracts used only by the tests."""

from __future__ import annotations

from typing import ClassVar

from app.events import Event


class OrderPlaced(Event):
    """A test order was placed."""

    name: ClassVar[str] = "test.order.placed"

    order_id: int


class OrderShipped(Event):
    """A test order shipped."""

    name: ClassVar[str] = "test.order.shipped"
    version: ClassVar[int] = 2

    order_id: int
