"""Create and drop one throw-away database per test run, on SQLite or PostgreSQL; watch what
a request does with the process database."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url


def _admin_kwargs(url: URL) -> dict[str, object]:
    return {
        "host": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password,
        "database": url.database or "postgres",
    }


async def _pg(url: URL, statement: str) -> None:
    conn = await asyncpg.connect(**_admin_kwargs(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_test_database(server_url: str | None, tmp_dir: Path) -> str:
    """Return the URL of a new empty database on the server of ``server_url`` (or SQLite)."""
    if not server_url:
        return f"sqlite+aiosqlite:///{tmp_dir / 'test.db'}"
    url = make_url(server_url)
    name = f"wfh_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_pg(url, f'CREATE DATABASE "{name}"'))
    return url.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


def drop_test_database(server_url: str | None, database_url: str) -> None:
    """Drop a database made by :func:`create_test_database` (SQLite files go with tmp)."""
    if not server_url:
        return
    name = make_url(database_url).database
    asyncio.run(_pg(make_url(server_url), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class Watched:
    """What the process database did while watched."""

    checkouts: int = 0
    """Connections taken from the pool."""
    statements: list[tuple[str, str | None]] = field(default_factory=list)
    """Each statement, with the isolation level of its connection (``AUTOCOMMIT`` or None)."""

    @property
    def isolation_levels(self) -> set[str | None]:
        return {level for _, level in self.statements}


@contextmanager
def watch_database() -> Iterator[Watched]:
    """Record the pool checkouts and the statements of the process database meanwhile."""
    from app.core.db import get_database

    engine = get_database().engine.sync_engine
    watched = Watched()

    def checkout(*_: Any) -> None:
        watched.checkouts += 1

    def executed(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        level = conn.get_execution_options().get("isolation_level")
        watched.statements.append((statement, level))

    event.listen(engine.pool, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", executed)
    try:
        yield watched
    finally:
        event.remove(engine.pool, "checkout", checkout)
        event.remove(engine, "before_cursor_execute", executed)
