"""PostgreSQL LISTEN/NOTIFY, the relays' wake-up: one dedicated LISTEN connection per relay.

The NOTIFY side is SQL (``repository``): the outbox writer sends ``pg_notify`` on
:data:`CHANNEL` in the emitting transaction, so PostgreSQL delivers it at commit, to every
listening relay. When the connection drops, the relay keeps polling (on its backoff) while
:class:`NotifyListener` reconnects, and wakes the relay once reconnected to catch up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from app.core.db import Database

logger = logging.getLogger("app.events.outbox")

CHANNEL = "workflow_hub_outbox"
"""The NOTIFY channel that wakes relays on PostgreSQL."""


class NotifyListener:
    """LISTENs on :data:`CHANNEL` and calls ``wake`` on every NOTIFY.

    Args:
        database: a PostgreSQL database; the connection is taken from its engine's pool and
            closed (never returned to the pool) when the listener stops.
        wake: called on each notification, and after each (re)connection.
    """

    def __init__(self, database: Database, wake: Callable[[], None]) -> None:
        self.database = database
        self.wake = wake
        self.connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 5.0) -> None:
        """Start listening; wait up to ``timeout`` seconds for the first connection."""
        self._task = asyncio.create_task(self._run(), name="outbox-listen")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._listen()
                delay = 0.5
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning(
                    "LISTEN %s failed; polling until it reconnects", CHANNEL, exc_info=True
                )
            self.connected.clear()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _listen(self) -> None:
        async with self.database.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            lost = asyncio.Event()

            def on_notify(*_: Any) -> None:
                self.wake()

            def on_lost(*_: Any) -> None:
                lost.set()

            try:
                await driver.add_listener(CHANNEL, on_notify)
                driver.add_termination_listener(on_lost)
                self.connected.set()
                self.wake()  # catch up with anything committed while we were not listening
                await lost.wait()
            finally:
                # A connection that LISTENs must never serve another checkout.
                await conn.invalidate()
