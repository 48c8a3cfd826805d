"""Operating the outbox: list, inspect, retry, discard and replay, in code and on the CLI."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.core.db import Database, session_scope, utcnow
from app.events import DoNotRetry, listener
from app.events.outbox import OutboxDelivery, OutboxEvent
from app.events.outbox import service as outbox
from app.events.outbox.cli import parse_time
from app.events.testing import run_pending
from tests.cli import run_app
from tests.events.outbox_support import (
    ORG,
    PROBE_LISTENER,
    OtherProbeEmitted,
    ProbeEmitted,
    create_probe_table,
    drop_probe_table,
    probe_rows,
    ready_emitter,
    record_probe,
    statuses,
    worker_env,
)


@listener(ProbeEmitted, delivery="durable", listener_id="tests.refuses")
async def refuses(event: ProbeEmitted) -> None:
    """Always a dead letter."""
    raise DoNotRetry(f"order {event.n} cannot be shipped")


@pytest.fixture
async def probe(db: Database) -> AsyncIterator[Database]:
    await create_probe_table(db)
    yield db
    await drop_probe_table(db)


async def _dead_letter(db: Database) -> int:
    emitter = ready_emitter(db, refuses)
    await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=3))
    await run_pending(emitter, db)
    async with session_scope() as session:
        return (await session.scalars(select(OutboxDelivery.id))).one()


async def test_list_inspect_retry_and_discard(probe: Database) -> None:
    emitter = ready_emitter(probe, refuses)
    dead_id = await _dead_letter(probe)
    async with session_scope() as session:
        page = await outbox.list_deliveries(session, status="dead", emitter=emitter)
        assert (page.total, [d.id for d in page.items]) == (1, [dead_id])
        assert page.items[0].max_attempts == 8
        assert page.items[0].last_error is not None
        assert "order 3 cannot be shipped" in page.items[0].last_error
        assert (await outbox.list_deliveries(session, status="done")).total == 0
        assert (await outbox.list_deliveries(session, organization_id=ORG)).total == 1
        assert (await outbox.list_deliveries(session, listener_id="nope")).total == 0

        detail = await outbox.get_delivery(session, dead_id)
        assert detail.payload["n"] == 3
        [error] = detail.errors
        assert (error.attempt, error.type) == (1, "app.events.outbox.errors.DoNotRetry")
        assert error.traceback is not None
        assert "raise DoNotRetry" in error.traceback

        with pytest.raises(outbox.DeliveryNotFound):
            await outbox.get_delivery(session, dead_id + 1000)
        other_org = uuid.uuid4()
        with pytest.raises(outbox.DeliveryNotFound):
            await outbox.get_delivery(session, dead_id, organization_id=other_org)

        retried = await outbox.retry_delivery(session, dead_id, now=utcnow())
        assert (retried.status, retried.attempts, len(retried.errors)) == ("pending", 0, 1)
        discarded = await outbox.discard_delivery(session, dead_id, now=utcnow())
        assert discarded.status == "discarded"
        with pytest.raises(outbox.DeliveryNotDiscardable, match="is discarded"):
            await outbox.discard_delivery(session, dead_id, now=utcnow())
        assert (await outbox.retry_delivery(session, dead_id, now=utcnow())).status == "pending"
        for status, refused in (
            ("done", outbox.retry_delivery),
            ("running", outbox.discard_delivery),
        ):
            await session.execute(
                update(OutboxDelivery).where(OutboxDelivery.id == dead_id).values(status=status)
            )
            with pytest.raises((outbox.DeliveryNotRetryable, outbox.DeliveryNotDiscardable)):
                await refused(session, dead_id, now=utcnow())


async def test_replay_backfills_a_listener_from_history(probe: Database) -> None:
    emitter = ready_emitter(probe, refuses)
    now = utcnow()
    for n in range(4):
        await emitter.emit_async(ProbeEmitted(organization_id=ORG, n=n))
    async with session_scope() as session:  # one event is older than the window
        oldest = (await session.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id))).first()
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == oldest)
            .values(occurred_at=now - timedelta(days=3))
        )

    backfilled = ready_emitter(probe, refuses, record_probe)  # the new listener ships
    async with session_scope() as session:
        result = await outbox.replay(
            session,
            emitter=backfilled,
            pattern="test.outbox.*",
            listener_id=PROBE_LISTENER,
            since=now - timedelta(days=1),
            now=utcnow(),
        )
    assert (result.queued, result.event_names) == (3, ["test.outbox.probe"])
    async with session_scope() as session:  # replaying again skips what is still pending
        again = await outbox.replay(
            session,
            emitter=backfilled,
            pattern="test.outbox.probe",
            listener_id=PROBE_LISTENER,
            since=now - timedelta(days=1),
            now=utcnow(),
        )
    assert again.queued == 0
    await run_pending(backfilled, probe)
    assert sorted(n for _, n in await probe_rows(probe)) == [1, 2, 3]

    async with session_scope() as session:
        with pytest.raises(outbox.UnknownListener, match=r"tests\.outbox\.probe"):
            await outbox.replay(
                session,
                emitter=backfilled,
                pattern="**",
                listener_id="tests.nobody",
                since=now,
                now=now,
            )
        none = await outbox.replay(
            session,
            emitter=backfilled,
            pattern="test.outbox.other",  # stored events the listener does not receive
            listener_id=PROBE_LISTENER,
            since=now - timedelta(days=10),
            now=now,
        )
        assert none.queued == 0
        with pytest.raises(outbox.InvalidPattern):
            await outbox.replay(
                session,
                emitter=backfilled,
                pattern="user.*x",
                listener_id=PROBE_LISTENER,
                since=now,
                now=now,
            )


def test_times_parse_as_iso_8601_or_ages() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now=now) == now - timedelta(hours=2)
    assert parse_time("7d", now=now) == now - timedelta(days=7)
    assert parse_time("90s", now=now) == now - timedelta(seconds=90)
    assert parse_time("2026-11-20", now=now) == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_time("2026-11-20T08:00:00Z", now=now) == datetime(2026, 11, 20, 8, tzinfo=UTC)
    assert parse_time("2026-11-20T10:00:00+02:00", now=now) == datetime(2026, 11, 20, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither an ISO 8601 time"):
        parse_time("yesterday", now=now)
    with pytest.raises(ValueError, match="no UTC equivalent"):
        parse_time("0001-01-01T00:00:00+01:00", now=now)


def _cli(args: list[str], database_url: str, root: Path) -> subprocess.CompletedProcess[str]:
    return run_app(["events", *args], worker_env(database_url, COLUMNS="200"), root)


@pytest.mark.slow
async def test_the_events_cli(probe: Database, database_url: str, project_root: Path) -> None:
    dead_id = await _dead_letter(probe)
    listed = _cli(["deliveries", "--status", "dead"], database_url, project_root)
    assert listed.returncode == 0, listed.stderr
    assert f"{dead_id:>8}  dead" in listed.stdout
    assert "order 3 cannot be shipped" in listed.stdout
    assert listed.stdout.rstrip().endswith("1-1 of 1")

    as_json = _cli(["deliveries", "--json"], database_url, project_root)
    assert json.loads(as_json.stdout)["items"][0]["id"] == dead_id

    shown = _cli(["show", str(dead_id)], database_url, project_root)
    assert shown.returncode == 0, shown.stderr
    assert "attempt 1 at" in shown.stdout
    assert 'raise DoNotRetry(f"order {event.n} cannot be shipped")' in shown.stdout
    assert '"n": 3' in shown.stdout

    retried = _cli(["retry", str(dead_id)], database_url, project_root)
    assert retried.returncode == 0, retried.stderr
    assert f"delivery {dead_id} queued" in retried.stdout
    assert await statuses(probe) == {"pending": 1}
    discarded = _cli(["discard", str(dead_id)], database_url, project_root)
    assert discarded.returncode == 0, discarded.stderr
    assert await statuses(probe) == {"discarded": 1}

    replayed = _cli(
        ["replay", "--pattern", "test.outbox.*", "--since", "1h", "--listener", PROBE_LISTENER],
        database_url,
        project_root,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert "queued 1 delivery(ies) to tests.outbox.probe (test.outbox.probe)" in replayed.stdout
    await run_pending(ready_emitter(probe, record_probe), probe)
    assert [n for _, n in await probe_rows(probe)] == [3]


@pytest.mark.slow
def test_the_events_cli_refuses_bad_input(database_url: str, project_root: Path) -> None:
    unknown = _cli(["retry", "999999"], database_url, project_root)
    assert unknown.returncode == 1
    assert "no delivery has the id 999999" in unknown.stderr
    missing = _cli(["show", "999999"], database_url, project_root)
    assert missing.returncode == 1
    for bad_id in (str(2**63), "0", "abc"):
        refused = _cli(["retry", bad_id], database_url, project_root)
        assert refused.returncode == 2, bad_id
        assert "Invalid value for 'delivery_id'" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    bad_since = _cli(
        ["replay", "--pattern", "**", "--since", "last tuesday", "--listener", PROBE_LISTENER],
        database_url,
        project_root,
    )
    assert bad_since.returncode == 2
    assert "neither an ISO 8601 time" in bad_since.stderr
    bad_listener = _cli(
        ["replay", "--pattern", "**", "--since", "1d", "--listener", "tests.nobody"],
        database_url,
        project_root,
    )
    assert bad_listener.returncode == 2
    assert "no durable listener 'tests.nobody'" in bad_listener.stderr
    assert PROBE_LISTENER in bad_listener.stderr
    bad_status = _cli(["deliveries", "--status", "lost"], database_url, project_root)
    assert bad_status.returncode == 2
    far_back = _cli(
        ["replay", "--pattern", "**", "--since", "99999999999d", "--listener", PROBE_LISTENER],
        database_url,
        project_root,
    )
    assert far_back.returncode == 2
    assert "further than a date can go" in far_back.stderr
    for days in ("-1", "0", "1e300"):
        bad_prune = _cli(["prune", "--retention-days", days], database_url, project_root)
        assert bad_prune.returncode == 2, days
        assert "Invalid value for '--retention-days'" in bad_prune.stderr, bad_prune.stderr
    assert OtherProbeEmitted.name  # the support contracts load in the subprocess too
