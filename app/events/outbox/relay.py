"""The relay: claims due durable deliveries and runs their listeners, with retries and leases.

One relay runs per process (in the API by default, or ``python -m app worker``); any number
share one PostgreSQL database. Each delivery runs in its own transaction: the listener's writes
(its ``session_scope()`` joins that transaction) and the delivery's completion commit together,
so its database effects happen exactly once. External effects are at least once: listeners
pass ``current_delivery().idempotency_key`` to the far side.

A running relay keeps its connections busy, so on PostgreSQL it gets a pool of its own, sized
for its concurrency (deliveries, plus one each for claims, maintenance and LISTEN) and
independent of the API's pool. Leases are renewed apart from all of it: on a thread of their
own, over a connection of their own (``app.events.outbox.leases``). The relay's pool skips
the pre-ping: with asyncpg a pre-ping costs three round trips per checkout, more than a
delivery's own work, and a connection that died is caught anyway: the attempt fails, the pool
is invalidated, and the delivery is retried (its completion is fenced by its lease, so a commit
whose answer was lost is never applied twice).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext import asyncio as sa_asyncio
from sqlalchemy.ext.asyncio import async_sessionmaker

from app.core.db import Database, transaction, utcnow
from app.core.errors import TransientError
from app.core.settings import EventsSettings
from app.events import metrics
from app.events.app_emitter import AppEmitter
from app.events.outbox import repository
from app.events.outbox.context import DeliveryContext, current_delivery_var
from app.events.outbox.errors import Defer, DoNotRetry, LeaseLost
from app.events.outbox.leases import LeaseKeeper, renewal_interval
from app.events.outbox.listen_notify import NotifyListener
from app.events.outbox.repository import Claim, rebuild
from app.events.outbox.service import prune_history
from app.events.retry import RetryPolicy

logger = logging.getLogger("app.events.outbox")

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """How a relay claims and runs deliveries (``EVENTS_RELAY_*`` settings).

    Attributes:
        concurrency: deliveries run at once.
        pool_size: the connections of the relay's own PostgreSQL pool (``concurrency + 3``
            when None).
        batch_size: deliveries claimed ahead of the running ones (one claim serves many).
        lease_seconds: how long a claim reserves a delivery; renewals extend it.
        heartbeat_seconds: how often expired leases are rescued and the outbox gauges
            refreshed; leases are renewed this often too, and at least every third of the
            lease (``renewal_interval``).
        poll_min_seconds: the first idle poll interval (doubling while idle).
        poll_max_seconds: the longest idle poll interval.
        shutdown_timeout_seconds: how long running deliveries may finish on stop.
        retention: how long finished history is kept.
        prune_interval_seconds: how often to prune (0: never).
        listen: wake on PostgreSQL NOTIFY.
    """

    concurrency: int = 8
    pool_size: int | None = None
    batch_size: int = 16
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 15.0
    poll_min_seconds: float = 0.2
    poll_max_seconds: float = 5.0
    shutdown_timeout_seconds: float = 25.0
    retention: timedelta = timedelta(days=7)
    prune_interval_seconds: float = 3600.0
    listen: bool = True

    @classmethod
    def from_settings(cls, settings: EventsSettings) -> RelayConfig:
        """Read the ``EVENTS_`` settings."""
        return cls(
            concurrency=settings.relay_concurrency,
            pool_size=settings.relay_pool_size,
            batch_size=settings.relay_batch_size,
            lease_seconds=settings.relay_lease_seconds,
            heartbeat_seconds=settings.relay_heartbeat_seconds,
            poll_min_seconds=settings.relay_poll_min_seconds,
            poll_max_seconds=settings.relay_poll_max_seconds,
            shutdown_timeout_seconds=settings.relay_shutdown_timeout_seconds,
            retention=timedelta(days=settings.retention_days),
            prune_interval_seconds=settings.prune_interval_seconds,
        )


class Relay:
    """Runs the durable listeners of ``emitter`` for the deliveries stored in ``database``.

    Args:
        emitter: the application emitter; the relay runs its durable listeners.
        database: where the outbox lives.
        config: claiming, leases, polling and shutdown.
        clock: the current time (tests inject one to check backoff without sleeping).
        rng: the jitter's random source.
        worker: this relay's name in the deliveries it holds (host:pid:random by default).
    """

    def __init__(
        self,
        emitter: AppEmitter,
        database: Database,
        config: RelayConfig | None = None,
        *,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
        worker: str | None = None,
    ) -> None:
        self.emitter = emitter
        self.database = database
        self.config = config or RelayConfig()
        self.clock = clock
        self.rng = rng or random.Random()
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._running: dict[asyncio.Task[None], Claim] = {}
        self._queue: deque[Claim] = deque()
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: NotifyListener | None = None
        self._keeper: LeaseKeeper | None = None
        self._given = database

    # -- running on demand (tests, CLI) ------------------------------------------------------

    async def run_once(self, limit: int | None = None) -> int:
        """Rescue expired leases, claim what is due (up to ``limit``), and run it all.

        Returns:
            The number of deliveries attempted.
        """
        await self.rescue()
        claims = await self._claim(limit or self.config.concurrency + self.config.batch_size)
        slots = asyncio.Semaphore(self.config.concurrency)

        async def run(claimed: Claim) -> None:
            async with slots:
                await self._spawn(claimed)

        await asyncio.gather(*(run(c) for c in claims))
        return len(claims)

    async def run_until_idle(self, max_rounds: int = 10_000) -> int:
        """Call :meth:`run_once` until nothing is due; return the deliveries attempted."""
        total = 0
        for _ in range(max_rounds):
            ran = await self.run_once()
            if not ran:
                return total
            total += ran
        raise RuntimeError(f"durable deliveries still due after {max_rounds} rounds")

    async def rescue(self) -> int:
        """Return deliveries whose lease expired to the queue (``repository.rescue_expired``)."""
        return await repository.rescue_expired(
            self.database,
            listeners=self._listener_ids(),
            policy_of=self._policy,
            now=self.clock(),
            rand=self.rng.random,
            keep=[claimed.token for claimed in self._held()],
        )

    # -- running as a service ----------------------------------------------------------------

    async def start(self) -> None:
        """Start claiming in the background (LISTEN, lease renewals, rescues and pruning too)."""
        if self._tasks:
            return
        self._stopping.clear()
        self.database = relay_database(
            self._given, concurrency=self.config.concurrency, pool_size=self.config.pool_size
        )
        if self.config.listen and not self.database.is_sqlite:
            self._listener = NotifyListener(self.database, self.wake)
            await self._listener.start()
        given = self._given
        self._keeper = LeaseKeeper(
            lambda: lease_database(given),
            lease_seconds=self.config.lease_seconds,
            interval=renewal_interval(
                lease_seconds=self.config.lease_seconds,
                heartbeat_seconds=self.config.heartbeat_seconds,
            ),
            clock=self.clock,
            name=self.worker,
        )
        self._keeper.start()
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="outbox-relay"),
            asyncio.create_task(self._maintenance_loop(), name="outbox-maintenance"),
            asyncio.create_task(self._prune_loop(), name="outbox-prune"),
        ]
        logger.info(
            "relay %s started: %d listener(s), concurrency %d",
            self.worker,
            len(self._listener_ids()),
            self.config.concurrency,
        )

    def wake(self) -> None:
        """Claim now instead of at the next poll (NOTIFY, or a local commit)."""
        self._wakeup.set()

    def request_stop(self, *, force: bool = False) -> None:
        """Stop claiming (safe from a signal handler); :meth:`stop` finishes the shutdown.

        Args:
            force: also cancel running deliveries now (they roll back and are released), as a
                second SIGTERM does.
        """
        self._stopping.set()
        self._wakeup.set()
        if force:
            for task in list(self._running):
                task.cancel()

    async def serve(self) -> None:
        """Run until :meth:`request_stop` (SIGTERM), then shut down gracefully."""
        await self.start()
        await self._stopping.wait()
        await self.stop()

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, let running deliveries finish for ``timeout`` seconds, release the rest.

        Args:
            timeout: seconds to wait (``shutdown_timeout_seconds`` by default).
        """
        self.request_stop()
        if not self._tasks:
            return
        claim_loop, maintenance, pruning = self._tasks
        pruning.cancel()  # a prune is batched: cancelling one leaves no half-written state
        await asyncio.gather(claim_loop, pruning, return_exceptions=True)  # claims: next turn
        queued, self._queue = list(self._queue), deque()
        if queued:  # claimed but never started: hand them back at once
            await repository.release(self.database, queued, now=self.clock())
        running = list(self._running)
        if running:
            wait = self.config.shutdown_timeout_seconds if timeout is None else timeout
            logger.info("relay %s: finishing %d delivery(ies)", self.worker, len(running))
            _, late = await asyncio.wait(running, timeout=wait) if wait > 0 else ((), running)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
                logger.warning(
                    "relay %s: released %d unfinished delivery(ies)", self.worker, len(late)
                )
        self._publish_held()
        maintenance.cancel()
        await asyncio.gather(maintenance, return_exceptions=True)
        if self._keeper is not None:  # renewals ran until every delivery finished or was released
            await self._keeper.stop()
            self._keeper = None
        self._tasks = []
        if self._listener is not None:
            await self._listener.stop()
            self._listener = None
        if self.database is not self._given:
            await self.database.dispose()
            self.database = self._given
        logger.info("relay %s stopped", self.worker)

    # -- internals ---------------------------------------------------------------------------

    def _listener_ids(self) -> list[str]:
        return sorted(self.emitter.durable_listeners())

    def _policy(self, listener_id: str) -> RetryPolicy:
        sub = self.emitter.durable_listener(listener_id)
        policy = sub.spec.retry if sub is not None else None
        return policy or RetryPolicy()

    async def _claim(self, limit: int) -> list[Claim]:
        now = self.clock()
        claims = await repository.claim(
            self.database,
            listeners=self._listener_ids(),
            limit=limit,
            now=now,
            lease_until=now + timedelta(seconds=self.config.lease_seconds),
            worker=self.worker,
        )
        for claimed in claims:
            if claimed.available_at is not None:
                lag = (now - claimed.available_at).total_seconds()
                metrics.RELAY_CLAIM_LAG.observe(max(0.0, lag))
        return claims

    async def refresh_gauges(self) -> repository.OutboxStats:
        """Refresh the outbox gauges of ``/metrics`` (see app/events/metrics), every heartbeat.

        Returns:
            The figures just exported.
        """
        now = self.clock()
        stats = await repository.outbox_stats(self.database, now=now)
        for status, count in stats.counts.items():
            metrics.OUTBOX_DELIVERIES.labels(status).set(count)
        age = (now - stats.oldest_due_at).total_seconds() if stats.oldest_due_at else 0.0
        metrics.OUTBOX_OLDEST_DUE_AGE.set(max(0.0, age))
        metrics.OUTBOX_STATS_REFRESHED.set(time.time())
        return stats

    def _spawn(self, claimed: Claim) -> asyncio.Task[None]:
        task = asyncio.create_task(self._deliver(claimed), name=f"delivery-{claimed.id}")
        self._running[task] = claimed
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        if self._queue and not self._stopping.is_set():
            self._spawn(self._queue.popleft())
        self._publish_held()
        if len(self._running) + len(self._queue) <= self.config.concurrency:
            self._wakeup.set()  # time to refill

    def _held(self) -> list[Claim]:
        return [*self._running.values(), *self._queue]

    def _publish_held(self) -> None:
        """Tell the lease keeper which tokens this relay holds now."""
        if self._keeper is not None:
            self._keeper.hold(frozenset(claimed.token for claimed in self._held()))

    async def _claim_loop(self) -> None:
        """Keep ``concurrency`` deliveries running and up to ``batch_size`` more claimed.

        A refill is claimed once no more than ``concurrency`` are held, so one claim serves
        many deliveries; when nothing is due, polls back off from the minimum to the maximum.
        """
        config = self.config
        idle = config.poll_min_seconds
        while not self._stopping.is_set():
            self._wakeup.clear()
            held = len(self._running) + len(self._queue)
            if held <= config.concurrency:
                limit = config.concurrency + config.batch_size - held
                try:
                    claims = await self._claim(limit)
                except Exception:
                    logger.exception("relay %s: claiming failed; retrying", self.worker)
                    claims = []
                    idle = config.poll_max_seconds
                self._queue.extend(claims)
                self._publish_held()
                while self._queue and len(self._running) < config.concurrency:
                    self._spawn(self._queue.popleft())
                if claims:
                    idle = config.poll_min_seconds
                    if len(claims) == limit:
                        continue  # more may be due
            busy = bool(self._running or self._queue)
            try:
                await asyncio.wait_for(
                    self._wakeup.wait(), config.poll_max_seconds if busy else idle
                )
            except TimeoutError:
                if not busy:
                    idle = min(idle * 2, config.poll_max_seconds)

    async def _maintenance_loop(self) -> None:
        """Rescue expired leases and refresh the gauges (renewals are the lease keeper's)."""
        while True:
            try:
                if await self.rescue():  # a restarted worker takes back what its predecessor held
                    self.wake()
                await self.refresh_gauges()
            except Exception:
                logger.exception("relay %s: maintenance failed; retrying", self.worker)
            await asyncio.sleep(self.config.heartbeat_seconds)

    async def _prune_loop(self) -> None:
        """Prune history every interval, apart from rescues: a long prune never delays them."""
        interval = self.config.prune_interval_seconds
        if not interval:
            return
        while True:
            await asyncio.sleep(interval)
            try:
                await prune_history(
                    self.database, retention=self.config.retention, now=self.clock()
                )
            except Exception:
                logger.exception("relay %s: pruning history failed; retrying", self.worker)

    async def _deliver(self, claimed: Claim) -> None:
        context = DeliveryContext(
            delivery_id=claimed.id,
            event_id=claimed.event_id,
            listener_id=claimed.listener_id,
            attempt=claimed.attempts,
            idempotency_key=claimed.idempotency_key,
        )
        token = current_delivery_var.set(context)
        started = time.perf_counter()
        try:
            event, envelope = rebuild(claimed)
            async with self.database.sessionmaker() as session, transaction(session):
                await self.emitter.deliver(claimed.listener_id, event, envelope)
                if not await repository.complete(session, claimed, now=self.clock()):
                    raise LeaseLost(f"delivery {claimed.id} was re-claimed by another relay")
            metrics.DURABLE_DELIVERIES.labels(claimed.listener_id, "done").inc()
        except LeaseLost as exc:
            metrics.DURABLE_DELIVERIES.labels(claimed.listener_id, "lost").inc()
            logger.warning("%s; this attempt was rolled back", exc)
        except asyncio.CancelledError:
            await self._release(claimed)
            raise
        except Defer as deferral:
            await self._deferred(claimed, deferral)
        except Exception as exc:
            await self._failed(claimed, exc)
        finally:
            current_delivery_var.reset(token)
            metrics.DURABLE_DELIVERY_DURATION.labels(claimed.listener_id).observe(
                time.perf_counter() - started
            )

    async def _release(self, claimed: Claim) -> None:
        """Hand a cancelled delivery back; if that fails too, its lease expires instead."""
        try:
            await asyncio.shield(repository.release(self.database, [claimed], now=self.clock()))
        except Exception:
            logger.warning("delivery %d: could not release it; its lease will expire", claimed.id)

    async def _deferred(self, claimed: Claim, deferral: Defer) -> None:
        """Move a delivery that is not due yet to ``deferral.until``; its attempt is not spent."""
        try:
            moved = await repository.defer(
                self.database, claimed, until=deferral.until, now=self.clock()
            )
        except Exception:
            logger.exception("delivery %d: could not defer it", claimed.id)
            return
        metrics.DURABLE_DELIVERIES.labels(
            claimed.listener_id, "deferred" if moved else "lost"
        ).inc()
        logger.info(
            "delivery %d of %s to %s deferred until %s: %s",
            claimed.id,
            claimed.name,
            claimed.listener_id,
            deferral.until.isoformat(),
            deferral.reason or "not due yet",
            extra={"correlation_id": claimed.correlation_id},
        )

    async def _failed(self, claimed: Claim, exc: Exception) -> None:
        now = self.clock()
        policy = self._policy(claimed.listener_id)
        decision = policy.decide(
            claimed.attempts,
            self.rng.random(),
            give_up=isinstance(exc, DoNotRetry),
            retry_after=exc.retry_after if isinstance(exc, TransientError) else None,
        )
        entry = repository.error_entry(attempt=claimed.attempts, at=now, exc=exc)
        try:
            recorded = await repository.record_failure(
                self.database, claimed, entry=entry, decision=decision, now=now
            )
        except Exception:
            logger.exception("delivery %d: could not record its failure", claimed.id)
            return
        outcome = "dead" if decision.dead else "retry"
        metrics.DURABLE_DELIVERIES.labels(
            claimed.listener_id, outcome if recorded else "lost"
        ).inc()
        # A listener steering its retries (a TransientError such as Retry or RetryAfter, or
        # DoNotRetry) said what happened: one line. Anything else is unexpected and logged with
        # its stack. The delivery's error history keeps the stack either way.
        steered = isinstance(exc, TransientError | DoNotRetry)
        if decision.dead:
            log = logger.error
        elif isinstance(exc, TransientError) and exc.retry_after is not None:
            log = logger.info  # asked to come back later (a 429)
        else:
            log = logger.warning
        log(
            "delivery %d of %s to %s failed (attempt %d/%d): %s%s",
            claimed.id,
            claimed.name,
            claimed.listener_id,
            claimed.attempts,
            policy.max_attempts,
            "dead letter" if decision.dead else f"retry in {decision.delay:.2f} s",
            f": {type(exc).__name__}: {exc}" if steered else "",
            exc_info=None if steered else exc,
            extra={"correlation_id": claimed.correlation_id},
        )


class DedicatedDatabase(Database):
    """A ``Database`` on the same URL as ``base``, with a pool of its own.

    Args:
        base: the process database (its URL and echo setting are reused).
        pool_size: connections kept open.
        max_overflow: connections opened beyond them at busy moments.
    """

    def __init__(self, base: Database, *, pool_size: int, max_overflow: int = 2) -> None:
        # Not Database.__init__: that one pre-pings (DATABASE_POOL_PRE_PING), which this pool
        # always avoids.
        self.settings = base.settings
        self.url = base.url
        self.is_sqlite = base.is_sqlite
        self.engine = sa_asyncio.create_async_engine(  # at call time: see app.core.db
            base.url,
            echo=base.settings.echo,
            pool_size=pool_size,
            max_overflow=max_overflow,
            pool_pre_ping=False,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)


def relay_database(
    database: Database, *, concurrency: int, pool_size: int | None = None
) -> Database:
    """Return the database a running relay uses: a dedicated pool on PostgreSQL.

    The pool has ``pool_size`` connections, by default one per running delivery plus claims,
    maintenance and LISTEN (lease renewals have a connection of their own: ``lease_database``).
    SQLite has no pool worth separating (one writer at a time), so it is returned as is.
    """
    if database.is_sqlite:
        return database
    return DedicatedDatabase(database, pool_size=pool_size or concurrency + 3)


def lease_database(database: Database) -> Database:
    """Return the lease keeper's own database: one connection, used by its thread alone.

    Built on the keeper's thread (an engine's connections belong to the event loop that opened
    them). On SQLite it is a second engine on the same file, with the same pragmas.
    """
    if database.is_sqlite:
        return Database(database.settings)
    return DedicatedDatabase(database, pool_size=1, max_overflow=0)
