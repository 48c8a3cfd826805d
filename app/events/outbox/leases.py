"""Lease renewal: a relay's leases are renewed on a thread of its own, over a connection of its own.

A claim reserves its deliveries until ``lease_until``; once that passes, any relay's rescue
hands them to another relay, which runs them again (its external calls included). So a running
delivery's lease must be renewed well before it expires, whatever else the process is doing.
Renewal used to be one step of the relay's maintenance loop, and under load it fell behind
three ways at once:

- **a busy event loop**: a delivery that computes for a while (a fan-out building thousands of
  events, a large payload decoded) delays every other coroutine of the process, renewals too;
- **a shared pool**: renewals queued for a connection behind the deliveries' own;
- **its cadence**: the next renewal came ``heartbeat_seconds`` after the previous one, its
  rescue and its gauge refresh had finished, so a slow count delayed it.

:class:`LeaseKeeper` runs renewals alone: on a daemon thread with its own event loop and its
own one-connection engine, every ``interval`` seconds on a fixed schedule (a third of the lease
at most, so two renewals may fail before a lease expires). The relay publishes the tokens it
holds (:meth:`LeaseKeeper.hold`) as an immutable set, the one thing the two threads share.
Python switches threads every few milliseconds even while the relay's loop computes, so the
renewals go on.

Renewal only extends what the relay holds: every change to a delivery (completion, failure,
deferral, release, renewal) is fenced by its lease token, so a relay that lost a lease anyway
(a process stopped for longer than the lease) can neither complete nor overwrite the delivery
another relay now holds: its attempt rolls back (``LeaseLost``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from app.core.db import Database
from app.events.outbox import repository

logger = logging.getLogger("app.events.outbox")


def renewal_interval(*, lease_seconds: float, heartbeat_seconds: float) -> float:
    """How often leases are renewed: the heartbeat, and at most a third of the lease."""
    return min(heartbeat_seconds, lease_seconds / 3)


class LeaseKeeper:
    """Renews the leases of the tokens a relay holds, on a thread of its own.

    Args:
        connect: builds the keeper's own database (called on the keeper's thread; disposed
            there when it stops).
        lease_seconds: how far each renewal extends a lease.
        interval: seconds between renewals (``renewal_interval``).
        clock: the current time (the relay's).
        name: the relay's name, for the thread and the logs.
    """

    def __init__(
        self,
        connect: Callable[[], Database],
        *,
        lease_seconds: float,
        interval: float,
        clock: Callable[[], datetime],
        name: str,
    ) -> None:
        self.connect = connect
        self.lease_seconds = lease_seconds
        self.interval = interval
        self.clock = clock
        self.name = name
        self.renewals = 0
        """Renewal rounds that wrote (tests and logs read it)."""
        self._tokens: frozenset[uuid.UUID] = frozenset()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()

    def hold(self, tokens: frozenset[uuid.UUID]) -> None:
        """Publish the tokens the relay holds now (one assignment: safe across threads)."""
        self._tokens = tokens

    def start(self) -> None:
        """Start renewing on a daemon thread."""
        if self._thread is not None:
            return
        self._started.clear()
        self._thread = threading.Thread(
            target=self._main, name=f"lease-keeper {self.name}", daemon=True
        )
        self._thread.start()
        self._started.wait()

    async def stop(self) -> None:
        """Stop renewing; the thread disposes its connection before it ends."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # its loop closed meanwhile: it is ending
                loop.call_soon_threadsafe(stop.set)
        await asyncio.to_thread(thread.join)
        self._thread = self._loop = self._stop = None

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        database = self.connect()
        try:
            await self._renew_until_stopped(database, self._stop)
        finally:
            await database.dispose()

    async def _renew_until_stopped(self, database: Database, stop: asyncio.Event) -> None:
        # A fixed schedule: the next renewal is due one interval after the previous was due,
        # however long that one took; a renewal later than a whole interval starts the
        # schedule again from now instead of firing a burst.
        due = time.monotonic()
        renewed_at = due
        while not stop.is_set():
            tokens = self._tokens
            if tokens:
                started = time.monotonic()
                try:
                    until = self.clock() + timedelta(seconds=self.lease_seconds)
                    renewal = repository.heartbeat(database, list(tokens), until=until)
                    if database.is_sqlite:  # SQLite's busy timeout bounds it (never cancel
                        await renewal  # a call its driver's thread is running)
                    else:  # a connection that hangs is dropped, and the next renewal reconnects
                        await asyncio.wait_for(renewal, timeout=max(self.interval, 0.5))
                    self.renewals += 1
                    renewed_at = time.monotonic()
                    if renewed_at - started > self.interval:
                        logger.warning(
                            "relay %s: renewing leases took %.2f s (interval %.2f s)",
                            self.name,
                            renewed_at - started,
                            self.interval,
                        )
                except Exception as exc:
                    # One line, no stack: the database is slow or away, which is no bug, and
                    # the next renewal comes within an interval.
                    logger.warning(
                        "relay %s: renewing leases failed (last renewal %.1f s ago, lease "
                        "%.1f s): %s; retrying",
                        self.name,
                        time.monotonic() - renewed_at,
                        self.lease_seconds,
                        f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                    )
            else:
                renewed_at = time.monotonic()
            due += self.interval
            now = time.monotonic()
            if due < now:
                due = now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), due - now)
