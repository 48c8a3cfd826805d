"""Test harness: one throw-away database per run, built by the migrations; every table emptied
after each test.

How tests are isolated (the one model of this suite):

- **Per run**: a new database (a temporary SQLite file, or ``wfh_test_<pid>_<random>`` on the
  PostgreSQL server of ``TEST_DATABASE_URL``), migrated to head by alembic, dropped at the end.
  Parallel runs never share one.
- **Per test**: the ``db`` fixture opens the process database, and afterwards deletes every row of
  every table (children first). Tests do NOT run inside one rolled-back transaction: the code
  under test commits for real (requests, listeners' and jobs' ``session_scope()``, the relay's
  own sessions, LISTEN/NOTIFY, worker and CLI subprocesses), and a rolled-back outer transaction
  would hide exactly the commits we test. So a test may commit freely and sees no other test's
  rows; one that creates something outside the tables (a probe table, a file) removes it itself.
- **Per test, in memory**: ``settings`` are re-read from the environment, and the ``app`` fixture
  builds a fresh application (its own emitter, integrations and relay) with its lifespan running.

The suite runs on SQLite by default and on PostgreSQL when ``TEST_DATABASE_URL`` names a server
(``make test`` does both).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.core import migrations
from app.core.db import Base, Database, close_database, init_database
from app.core.settings import Settings, get_settings, reset_settings
from app.registry import load_all_models
from tests.dbutil import create_test_database, drop_test_database

SERVER_URL = os.environ.get("TEST_DATABASE_URL") or None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the tests marked ``postgres_only`` on SQLite, saying why."""
    if SERVER_URL is not None:
        return
    skip = pytest.mark.skip(
        reason="PostgreSQL only: several processes share one database (set TEST_DATABASE_URL)"
    )
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A new database for this run, migrated to head; dropped at the end."""
    url = create_test_database(SERVER_URL, tmp_path_factory.mktemp("db"))
    os.environ["DATABASE_URL"] = url
    os.environ["APP_ENV"] = "test"
    os.environ.setdefault("APP_LOG_LEVEL", "WARNING")
    os.environ["SCHEDULER_ENABLED"] = "false"  # tests drive ticks and reconciles themselves
    reset_settings()
    migrations.upgrade(url)
    yield url
    drop_test_database(SERVER_URL, url)


@pytest.fixture
def is_postgres(database_url: str) -> bool:
    return database_url.startswith("postgresql")


@pytest.fixture
def settings(database_url: str) -> Iterator[Settings]:
    """Fresh settings for one test; tests may ``monkeypatch.setenv`` before asking for it."""
    reset_settings()
    yield get_settings()
    reset_settings()


async def _truncate(database: Database) -> None:
    load_all_models()
    async with database.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(text(f'DELETE FROM "{table.name}"'))


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The process database for one test; every table is emptied afterwards."""
    database = init_database(settings.database)
    try:
        yield database
    finally:
        await _truncate(database)
        await database.dispose()
        await close_database()


@pytest.fixture
async def app(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    """A fresh application with its lifespan running."""
    from app.main import create_app

    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to ``app`` in-process."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def project_root() -> Path:
    return Path(__file__).resolve().parents[1]
