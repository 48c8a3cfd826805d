"""Database: declarative ``Base``, async engine and sessions, transaction scopes.

Services never commit. A request's session is committed or rolled back by :func:`get_session`;
listeners, jobs and scripts use :func:`session_scope`. Work that must commit on its own, apart
from the caller's transaction, goes through :func:`own_transaction`, the one named exception.
Callbacks registered with :func:`after_commit` run once the surrounding transaction has
committed, and are dropped on rollback (background event delivery relies on this).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from fastapi import Depends
from sqlalchemy import DateTime, MetaData, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext import asyncio as sa_asyncio
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, SessionTransaction, mapped_column
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import await_

from app.core.errors import AppError
from app.core.settings import DatabaseSettings

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PostCommitHook = Callable[[], Awaitable[None] | None]
T = TypeVar("T")

current_session_var: ContextVar[AsyncSession | None] = ContextVar("current_session", default=None)


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


_from_iso = datetime.fromisoformat


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is UTC:  # PostgreSQL's drivers answer in UTC
            return value
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """On SQLite, parse the stored UTC text straight into an aware datetime (one C call
        instead of parsing, then ``replace(tzinfo=...)``, which costs three times as much: it
        adds up on every list of rows)."""
        general = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return general

        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                try:
                    parsed = _from_iso(value + "+00:00")
                except ValueError:
                    pass  # not SQLAlchemy's naive storage format: the general path reads it
                else:
                    return parsed
            return general(value) if general is not None else value

        return process


class Base(DeclarativeBase):
    """Declarative base of every table, with a constraint naming convention."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class UUIDPrimaryKey:
    """Mixin: a UUID primary key generated in Python."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    """Mixin: ``created_at`` and ``updated_at`` maintained by the ORM."""

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Database:
    """An engine and its session factory."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.url = make_url(settings.url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {
            "echo": settings.echo,
            # A failed statement's error text never carries the bound values: they are emails,
            # names and device tokens, and the text reaches the logs.
            "hide_parameters": True,
        }
        if self.is_sqlite:
            _ensure_sqlite_dir(self.url.database)
            kwargs["connect_args"] = {
                "timeout": settings.sqlite_busy_timeout_ms / 1000,
                # The driver opens a transaction just before the first write, and this makes
                # it BEGIN IMMEDIATE: reads before it run on their own (no snapshot is held),
                # and the write lock is taken when the transaction begins, never by upgrading
                # a read transaction (in WAL mode that upgrade fails at once after another
                # connection has written, whatever the busy timeout).
                "isolation_level": "IMMEDIATE",
            }
        if not (self.is_sqlite and _in_memory(self.url.database)):
            # A file SQLite database is pooled like PostgreSQL; an in-memory one keeps the one
            # connection that holds it.
            kwargs.update(
                pool_size=settings.pool_size,
                max_overflow=settings.max_overflow,
                pool_timeout=settings.pool_timeout_seconds,
            )
        if not self.is_sqlite:
            kwargs["pool_pre_ping"] = settings.pool_pre_ping
        # Looked up at call time: OpenTelemetry's SQLAlchemy instrumentation (app/core/tracing),
        # installed after this import, wraps the module's function.
        self.engine: AsyncEngine = sa_asyncio.create_async_engine(self.url, **kwargs)
        if not self.is_sqlite and self.engine.dialect.driver == "asyncpg":
            self.engine.dialect.do_ping = _ping_in_one_round_trip  # type: ignore[method-assign]
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas(settings))
            SQLiteWriters(settings.sqlite_busy_timeout_ms / 1000).install(self.engine)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        # Reads that write nothing run in autocommit on PostgreSQL (reading(), read_session()):
        # the same pool, each connection set to autocommit while it is out.
        self.read_engine: AsyncEngine = (
            self.engine
            if self.is_sqlite
            else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.read_sessionmaker = async_sessionmaker(self.read_engine, expire_on_commit=False)

    async def ping(self) -> None:
        """Run a trivial query; raises when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _ping_in_one_round_trip(dbapi_connection: Any) -> bool:
    """The pool's pre-ping on asyncpg, in one round trip instead of three.

    SQLAlchemy's own opens a transaction around its query and rolls it back (BEGIN, query,
    ROLLBACK), on every checkout. A simple-protocol ``SELECT 1`` proves the connection alive
    in one round trip; it prepares no statement, so pgbouncer's transaction mode runs it too.
    A dead connection raises here as it does there, and the pool replaces it.
    """
    try:
        await_(dbapi_connection.driver_connection.execute("SELECT 1"))
    except Exception as error:
        dbapi_connection._handle_exception(error)  # the DBAPI error the pool understands
    return True


def _ensure_sqlite_dir(database: str | None) -> None:
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def _in_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or "mode=memory" in database


def _sqlite_pragmas(settings: DatabaseSettings) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(settings.sqlite_busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


_WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|BEGIN|SAVEPOINT)\b", re.IGNORECASE)


class SQLiteWriters:
    """Writers of one SQLite database queue in the process instead of failing.

    SQLite has one writer at a time. A connection that is about to open a write transaction
    (its first INSERT, UPDATE, DELETE, an explicit BEGIN or a SAVEPOINT) first takes this
    process's writer lock, in arrival order, and holds it until its transaction commits or rolls
    back; the transaction then begins IMMEDIATE. Writers of the process therefore wait their turn
    here instead of spinning in SQLite's busy handler; the busy timeout still covers other
    processes. A writer that waits longer than the busy timeout fails as SQLite would ("database
    is locked", answered as 503 ``database_busy``).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.lock = asyncio.Lock()
        self.holder: Any = None

    def install(self, engine: AsyncEngine) -> None:
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", self._before_execute, retval=True)
        dialect = sync_engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        # A COMMIT or ROLLBACK with no transaction open does nothing but cost a hop to
        # aiosqlite's thread: every read-only connection returned to the pool would pay one.
        def do_commit(dbapi_connection: Any) -> None:
            try:
                if _in_transaction(dbapi_connection):
                    commit(dbapi_connection)
            finally:
                self.release(dbapi_connection)

        def do_rollback(dbapi_connection: Any) -> None:
            try:
                if _in_transaction(dbapi_connection):
                    rollback(dbapi_connection)
            finally:
                self.release(dbapi_connection)

        dialect.do_commit = do_commit  # type: ignore[method-assign]
        dialect.do_rollback = do_rollback  # type: ignore[method-assign]
        for name in ("checkin", "close", "invalidate"):
            event.listen(sync_engine.pool, name, self._released_with)

    def _before_execute(
        self, conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any
    ) -> tuple[str, Any]:
        match = _WRITE.match(statement)
        if match is None:
            return statement, parameters
        fairy = conn.connection
        if fairy.driver_connection.in_transaction or self.holder is fairy.dbapi_connection:
            return statement, parameters
        self.acquire(fairy.dbapi_connection)
        if match.group(1).upper() == "BEGIN":
            return "BEGIN IMMEDIATE", parameters
        if match.group(1).upper() == "SAVEPOINT":
            # SQLite would open a deferred transaction around the savepoint: open ours first.
            await_(fairy.driver_connection.execute("BEGIN IMMEDIATE"))
        return statement, parameters

    def acquire(self, dbapi_connection: Any) -> None:
        try:
            await_(asyncio.wait_for(self.lock.acquire(), self.timeout))
        except TimeoutError:
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            ) from None
        self.holder = dbapi_connection

    def release(self, dbapi_connection: Any) -> None:
        if self.holder is dbapi_connection and dbapi_connection is not None:
            self.holder = None
            self.lock.release()

    def _released_with(self, dbapi_connection: Any, *_: Any) -> None:
        self.release(dbapi_connection)


def _in_transaction(dbapi_connection: Any) -> bool:
    """Whether SQLite has a transaction open on the connection, read on this thread (the
    sqlite3 connection's flag, no hop); True when it cannot tell."""
    driver = getattr(dbapi_connection, "_connection", None)  # the aiosqlite connection
    return bool(getattr(driver, "in_transaction", True))


_database: Database | None = None


def init_database(settings: DatabaseSettings) -> Database:
    """Create the process database (replacing any previous one) and return it."""
    global _database
    _database = Database(settings)
    return _database


def get_database() -> Database:
    """Return the process database; raises if :func:`init_database` was not called."""
    if _database is None:
        raise RuntimeError("the database is not initialised; call init_database() first")
    return _database


async def close_database() -> None:
    """Dispose the process database, if any."""
    global _database
    if _database is not None:
        await _database.dispose()
        _database = None


class TransactionBuffer(Generic[T]):
    """Items that belong to a session's transaction, kept in ``session.info`` until it ends.

    Each item remembers the transaction or savepoint it was added in, and is dropped when that
    one rolls back (a savepoint rolling back drops only its own items); whatever is left when
    the outermost transaction ends is dropped too. The owner takes the items at commit: the
    after-commit hooks below take theirs once the commit is done, the outbox takes its staged
    events just before, to write them in the committing transaction.

    Args:
        key: the ``session.info`` key of the items (unique per buffer).
    """

    _buffers: ClassVar[list[TransactionBuffer[Any]]] = []

    def __init__(self, key: str) -> None:
        self.key = key
        TransactionBuffer._buffers.append(self)

    def add(self, session: AsyncSession | Session, item: T) -> None:
        """Add ``item`` to the innermost transaction (or savepoint) open on ``session``."""
        sync = session.sync_session if isinstance(session, AsyncSession) else session
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        sync.info.setdefault(self.key, []).append((transaction, item))

    def take(self, session: AsyncSession | Session) -> list[T]:
        """Remove and return every item of ``session``'s transaction, in the order added."""
        entries: list[tuple[SessionTransaction | None, T]] = session.info.pop(self.key, [])
        return [item for _, item in entries]

    def _rolled_back(self, session: Session, ended: SessionTransaction) -> None:
        entries: list[tuple[SessionTransaction | None, T]] | None = session.info.get(self.key)
        if not entries:
            return
        if not ended.nested:
            session.info.pop(self.key, None)
            return
        session.info[self.key] = [
            (transaction, item)
            for transaction, item in entries
            if not within_transaction(transaction, ended)
        ]


_after_commit_hooks: TransactionBuffer[PostCommitHook] = TransactionBuffer("after_commit")
_COMMITTED = "after_commit.committed"


def after_commit(session: AsyncSession | Session, hook: PostCommitHook) -> None:
    """Run ``hook`` after ``session``'s transaction commits; drop it on rollback.

    A hook registered inside a savepoint is dropped when that savepoint rolls back, even if
    the outer transaction commits (a failed inline listener takes its background work along).
    :func:`transaction` runs the hooks once its commit is done.
    """
    _after_commit_hooks.add(session, hook)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    for buffer in TransactionBuffer._buffers:
        buffer._rolled_back(session, previous_transaction)


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    hooks = _after_commit_hooks.take(session)
    if hooks:
        session.info.setdefault(_COMMITTED, []).extend(hooks)


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        for buffer in TransactionBuffer._buffers:
            session.info.pop(buffer.key, None)


def within_transaction(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    """Whether ``transaction`` is ``ended`` or nested inside it."""
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


def current_session() -> AsyncSession | None:
    """Return the session of the enclosing transaction scope, if any."""
    return current_session_var.get()


async def _run_after_commit(session: AsyncSession) -> None:
    hooks: list[PostCommitHook] = session.info.pop(_COMMITTED, [])
    for hook in hooks:
        try:
            result = hook()
            if asyncio.iscoroutine(result):
                await result
        except Exception:
            logger.exception("after-commit hook %r failed", hook)


@asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit ``session`` when the block succeeds, roll back when it raises.

    An :class:`~app.core.errors.AppError` whose ``commit`` is true is the exception: the work
    done before it commits, and the error is raised again after the commit.
    """
    token = current_session_var.set(session)
    recorded: AppError | None = None
    try:
        try:
            yield session
        except AppError as exc:
            if not exc.commit:
                raise
            # The error records what happened (a stolen refresh token's family is revoked):
            # the record commits, and then the error is answered.
            recorded = exc
        await session.commit()
    except BaseException:
        _after_commit_hooks.take(session)
        session.info.pop(_COMMITTED, None)
        await session.rollback()
        raise
    finally:
        current_session_var.reset(token)
    await _run_after_commit(session)
    if recorded is not None:
        raise recorded


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Run the block in a savepoint of ``session``'s transaction; roll only it back on error.

    SQLite's driver opens its transaction lazily (before the first write), and a savepoint
    taken outside a transaction would commit on release, so the transaction is opened first.
    """
    connection = await session.connection()
    if connection.dialect.name == "sqlite":
        raw = await connection.get_raw_connection()
        if not raw.driver_connection.in_transaction:  # type: ignore[union-attr]
            await connection.exec_driver_sql("BEGIN")
    async with session.begin_nested():
        yield session


@asynccontextmanager
async def session_scope(*, join: bool = True) -> AsyncIterator[AsyncSession]:
    """Open a session for non-request code (listeners, jobs, CLI) and own its transaction.

    Inside another scope (an inline listener during a request, or a durable delivery run by the
    relay) it joins the enclosing transaction instead, so the listener's writes commit or roll
    back with it. ``join=False`` always opens a separate transaction.
    """
    outer = current_session_var.get()
    if join and outer is not None:
        yield outer
        return
    async with get_database().sessionmaker() as session, transaction(session):
        yield session


def _refuse_inside_a_transaction(what: str) -> None:
    """A second pooled connection must not be taken while the enclosing scope holds one."""
    outer = current_session_var.get()
    if outer is not None and outer.in_transaction():
        raise RuntimeError(
            f"{what} inside a transaction that holds a connection: open it before the "
            "enclosing session is used, or after it ends"
        )


@asynccontextmanager
async def own_transaction() -> AsyncIterator[AsyncSession]:
    """Open a transaction that commits on its own, whatever the caller's transaction does.

    This is the one named exception to "services never commit", for work whose effect must
    outlive, or precede, the caller's transaction: a login attempt is counted before the
    password is checked and stays counted when the login fails; each page of a fan-out commits
    so a restart resumes instead of starting over. Call it only at an edge (a listener, a job,
    a command, or the one route that counts login attempts), never from a service or a
    repository: the service takes the session it opens.

    It refuses to open while the enclosing scope's session already holds a connection: that
    caller would wait for a second pooled connection while holding one, and under a burst every
    pooled connection ends up held by a caller waiting for another, until the pool times out.

    Raises:
        RuntimeError: the enclosing transaction scope already holds a connection.
    """
    _refuse_inside_a_transaction("own_transaction()")
    async with get_database().sessionmaker() as session, transaction(session):
        yield session


@asynccontextmanager
async def reading() -> AsyncIterator[AsyncConnection]:
    """A pooled connection for one read that writes nothing: no ORM session and no commit. For
    hot read paths that select plain columns; the same rule as :func:`own_transaction` applies.

    On PostgreSQL it runs in autocommit: each statement is a transaction of its own, with no
    BEGIN before it nor ROLLBACK after it (two round trips of the three a single read costs
    otherwise). Never write through it: nothing would roll back.

    Raises:
        RuntimeError: the enclosing transaction scope already holds a connection.
    """
    _refuse_inside_a_transaction("reading()")
    async with get_database().read_engine.connect() as conn:  # SQLite opens none for a read
        yield conn


@asynccontextmanager
async def one_write() -> AsyncIterator[AsyncConnection]:
    """A pooled connection for one short write of plain statements, committed on its own, with
    no ORM session: on PostgreSQL in autocommit (no BEGIN or COMMIT round trips: each
    statement is its own transaction, so run one statement, or statements each of which leaves
    the data consistent), on SQLite in a transaction committed at the end. The same rule as
    :func:`own_transaction` applies.

    Raises:
        RuntimeError: the enclosing transaction scope already holds a connection.
    """
    _refuse_inside_a_transaction("one_write()")
    database = get_database()
    if database.is_sqlite:
        async with database.engine.begin() as conn:
            yield conn
        return
    async with database.engine.connect() as conn:
        yield await conn.execution_options(isolation_level="AUTOCOMMIT")


@asynccontextmanager
async def read_session() -> AsyncIterator[AsyncSession]:
    """A session for reads only: nothing is committed. On PostgreSQL it runs in autocommit, as
    :func:`reading` does: no BEGIN and no ROLLBACK round trips around its reads (which then
    share no snapshot). It takes a pooled connection at its first read; ``close()`` gives it
    back (before a call to a far system), and the next read takes one again, in autocommit
    too. The same rule as :func:`own_transaction` applies.

    Raises:
        RuntimeError: the enclosing transaction scope already holds a connection.
    """
    _refuse_inside_a_transaction("read_session()")
    async with get_database().read_sessionmaker() as session:
        yield session


async def get_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: one session per request, committed before the response is sent."""
    async with session_scope(join=False) as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""The request's session: committed after the endpoint returns, before the response is sent."""


async def get_read_session() -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the session of a route that only reads, as :func:`read_session`."""
    async with read_session() as session:
        yield session


ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
"""The session of a route that writes nothing: on PostgreSQL its statements run in autocommit,
each on its own (no BEGIN and no COMMIT round trips; no shared snapshot either, so give it
routes of one read, like a badge count). Nothing it does is committed; it is closed before the
response is sent."""
