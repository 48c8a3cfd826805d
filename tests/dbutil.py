"""Create and drop one throw-away database per test run, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg
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
