"""The process database's pool: a connection PostgreSQL dropped is replaced at checkout."""

from __future__ import annotations

import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import Database, own_transaction, read_session, reading


async def test_a_pooled_connection_the_server_killed_is_replaced_at_checkout(db: Database) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite has no server to drop a connection")
    async with db.engine.connect() as conn:
        first = await conn.scalar(text("SELECT pg_backend_pid()"))
    outsider = create_async_engine(db.url, poolclass=NullPool)
    try:
        async with outsider.connect() as other:
            killed = await other.scalar(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        await outsider.dispose()
    assert killed
    # The pre-ping (one round trip) finds the pooled connection dead; the pool opens another
    # instead of handing the caller an error.
    async with db.engine.connect() as conn:
        second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert await conn.scalar(text("SELECT 1")) == 1
    assert second != first


async def test_reads_run_each_statement_on_its_own_and_own_transaction_opens_one(
    db: Database,
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite opens no transaction for a read either way")
    began = text("SELECT transaction_timestamp()")
    async with read_session() as session:  # autocommit: each statement a transaction of its own
        assert await session.scalar(began) != await session.scalar(began)
    async with reading() as conn:
        assert await conn.scalar(began) != await conn.scalar(began)
    async with own_transaction() as session:  # one transaction: one start for both
        assert await session.scalar(began) == await session.scalar(began)
    async with db.engine.connect() as conn:  # the pooled connection is back to transactions
        assert await conn.scalar(began) == await conn.scalar(began)
