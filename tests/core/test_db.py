"""The process database's pool: a connection PostgreSQL dropped is replaced at checkout."""

from __future__ import annotations

import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import Database, one_write, own_transaction, read_session, reading, session_scope


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
    async with read_session() as session:  # given back (before a far call), then taken again
        await session.scalar(began)
        await session.close()
        assert await session.scalar(began) != await session.scalar(began)
    async with reading() as conn:
        assert await conn.scalar(began) != await conn.scalar(began)
    async with own_transaction() as session:  # one transaction: one start for both
        assert await session.scalar(began) == await session.scalar(began)
    async with db.engine.connect() as conn:  # the pooled connection is back to transactions
        assert await conn.scalar(began) == await conn.scalar(began)


async def test_one_write_commits_on_its_own_in_autocommit_on_postgresql_and_a_transaction_on_sqlite(
    db: Database,
) -> None:
    async with session_scope() as session:
        await session.execute(text("CREATE TABLE one_write_probe (n INTEGER)"))
    try:
        async with one_write() as conn:
            await conn.execute(text("INSERT INTO one_write_probe VALUES (1)"))
            await conn.execute(text("INSERT INTO one_write_probe VALUES (2)"))
        async with reading() as conn:  # committed, seen from another connection
            assert (await conn.scalar(text("SELECT SUM(n) FROM one_write_probe"))) == 3
        began = text("SELECT transaction_timestamp()")
        if not db.is_sqlite:  # autocommit: each statement a transaction of its own
            async with one_write() as conn:
                assert await conn.scalar(began) != await conn.scalar(began)
        else:  # a transaction: a failure rolls back what the block wrote
            with pytest.raises(RuntimeError):
                async with one_write() as conn:
                    await conn.execute(text("INSERT INTO one_write_probe VALUES (4)"))
                    raise RuntimeError("boom")
            async with reading() as conn:
                assert (await conn.scalar(text("SELECT SUM(n) FROM one_write_probe"))) == 3
        async with session_scope() as session:
            await session.execute(text("SELECT 1"))  # the scope now holds a connection
            with pytest.raises(RuntimeError, match="one_write"):
                async with one_write():
                    pass
    finally:
        async with session_scope() as session:
            await session.execute(text("DROP TABLE one_write_probe"))
