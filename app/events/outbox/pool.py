"""The relay's own connection pool on PostgreSQL.

A running relay keeps its connections busy, so it gets a pool of its own, sized for its
concurrency (deliveries, plus one each for claims, heartbeats and LISTEN) and independent of the
API's pool. It skips the pre-ping: with asyncpg a pre-ping costs three round trips per checkout,
more than a delivery's own work, and a connection that died is caught anyway: the attempt fails,
the pool is invalidated, and the delivery is retried (its completion is fenced by its lease, so
a commit whose answer was lost is never applied twice).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from app.core.db import Database


class DedicatedDatabase(Database):
    """A ``Database`` on the same URL as ``base``, with a pool of its own.

    Args:
        base: the process database (its URL and echo setting are reused).
        pool_size: connections kept open.
    """

    def __init__(self, base: Database, *, pool_size: int) -> None:
        # Not Database.__init__: that one pre-pings (DATABASE_POOL_PRE_PING), which this pool
        # always avoids.
        self.settings = base.settings
        self.url = base.url
        self.is_sqlite = base.is_sqlite
        self.engine = create_async_engine(
            base.url,
            echo=base.settings.echo,
            pool_size=pool_size,
            max_overflow=2,
            pool_pre_ping=False,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)


def relay_database(database: Database, *, concurrency: int) -> Database:
    """Return the database a running relay uses: a dedicated pool on PostgreSQL.

    SQLite has no pool worth separating (one writer at a time), so it is returned as is.
    """
    if database.is_sqlite:
        return database
    return DedicatedDatabase(database, pool_size=concurrency + 3)
