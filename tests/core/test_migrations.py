"""The migrations build the schema, and they agree with the models."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from app.core import migrations
from app.core.db import Base, Database
from app.core.migrations import alembic_config
from app.events.outbox.models import OutboxDelivery, OutboxEvent
from app.registry import load_all_models
from tests.conftest import SERVER_URL
from tests.dbutil import create_test_database, drop_test_database


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "render_as_batch": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_agree(db: Database) -> None:
    load_all_models()
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], f"models and migrations disagree; run make migration: {diff}"


def test_one_linear_tree(database_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(database_url))
    assert len(script.get_heads()) == 1
    revisions = list(script.walk_revisions())
    assert all(not rev.is_merge_point for rev in revisions)


async def _seed_running_duplicates(url: str) -> None:
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    events = [uuid.uuid4() for _ in range(3)]
    async with engine.begin() as conn:
        await conn.execute(
            insert(OutboxEvent),
            [
                {
                    "id": event_id,
                    "name": "test.outbox.probe",
                    "version": 1,
                    "correlation_id": "c",
                    "occurred_at": now,
                    "payload": {"n": n},
                }
                for n, event_id in enumerate(events)
            ],
        )
        await conn.execute(
            insert(OutboxDelivery),
            [
                {
                    "event_id": event_id,
                    "listener_id": "tests.ordered",
                    "event_name": "test.outbox.probe",
                    "ordering_key": key,
                    "status": "running",
                    "attempts": 1,
                    "available_at": now,
                    "lease_until": now,
                    "lease_token": uuid.uuid4(),
                    "worker": "old-relay",
                    "errors": [],
                    "created_at": now,
                    "updated_at": now,
                }
                for event_id, key in zip(events, ["alice", "alice", "bob"], strict=True)
            ],
        )
    await engine.dispose()


async def _delivery_states(url: str) -> list[tuple[str | None, str, str | None]]:
    engine = create_async_engine(url)
    table = OutboxDelivery.__table__
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(table.c.ordering_key, table.c.status, table.c.worker).order_by(table.c.id)
        )
        states = [(key, status, worker) for key, status, worker in rows]
    await engine.dispose()
    return states


def test_0006_hands_back_running_duplicates_of_a_key_before_indexing(tmp_path: Path) -> None:
    url = create_test_database(SERVER_URL, tmp_path)
    try:
        migrations.upgrade(url, "0005")
        asyncio.run(_seed_running_duplicates(url))  # what the old claim rule could leave
        migrations.upgrade(url, "head")
        assert asyncio.run(_delivery_states(url)) == [
            ("alice", "running", "old-relay"),  # the earliest keeps running
            ("alice", "pending", None),  # handed back, to run after it
            ("bob", "running", "old-relay"),  # another key is untouched
        ]
    finally:
        drop_test_database(SERVER_URL, url)


async def _seed_dead_letter_with_followers(url: str) -> None:
    engine = create_async_engine(url)
    now = datetime.now(UTC)
    event_id = uuid.uuid4()
    deliveries = [  # (listener, key, status), in id order
        ("tests.ordered", "alice", "dead"),
        ("tests.ordered", "alice", "pending"),  # behind the dead letter
        ("tests.ordered", "alice", "pending"),  # behind the dead letter
        ("tests.ordered", "bob", "pending"),  # another key
        ("tests.other", "alice", "pending"),  # another listener
    ]
    async with engine.begin() as conn:
        await conn.execute(
            insert(OutboxEvent).values(
                id=event_id,
                name="test.outbox.probe",
                version=1,
                correlation_id="c",
                occurred_at=now,
                payload={"n": 0},
            )
        )
        for listener_id, key, status in deliveries:
            await conn.execute(
                insert(OutboxDelivery).values(
                    event_id=event_id,
                    listener_id=listener_id,
                    event_name="test.outbox.probe",
                    ordering_key=key,
                    status=status,
                    attempts=1,
                    available_at=now,
                    errors=[],
                    created_at=now,
                    updated_at=now,
                )
            )
    await engine.dispose()


async def _held_flags(url: str) -> list[bool]:
    engine = create_async_engine(url)
    table = OutboxDelivery.__table__
    async with engine.connect() as conn:
        rows = await conn.execute(select(table.c.held).order_by(table.c.id))
        flags = [bool(held) for (held,) in rows]
    await engine.dispose()
    return flags


def test_0009_marks_the_deliveries_a_dead_letter_already_holds(tmp_path: Path) -> None:
    url = create_test_database(SERVER_URL, tmp_path)
    try:
        migrations.upgrade(url, "0008")
        asyncio.run(_seed_dead_letter_with_followers(url))
        migrations.upgrade(url, "head")  # the indexes build CONCURRENTLY on PostgreSQL
        assert asyncio.run(_held_flags(url)) == [False, True, True, False, False]
        command.downgrade(alembic_config(url), "0008")  # and back: both directions work
        migrations.upgrade(url, "head")
    finally:
        drop_test_database(SERVER_URL, url)
