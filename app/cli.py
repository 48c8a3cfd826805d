"""``python -m app``: the operator's command line.

Every command that needs the database or the emitter runs inside :func:`app.runtime.open_runtime`,
and every failure is printed the same way, ``error (<code>): <detail>``, with exit code 1
(:func:`app.core.commands.fail`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import typer
import uvicorn
from pydantic import ValidationError

from app.core import migrations
from app.core.commands import fail, install_command_runtime
from app.core.crontab import InvalidSchedule
from app.core.logging import configure_logging
from app.core.metrics import serve_metrics
from app.core.settings import (
    Environment,
    InsecureSettingsError,
    Settings,
    ensure_safe,
    get_settings,
    reset_settings,
)
from app.events.outbox.cli import events_cli
from app.events.outbox.runtime import make_relay
from app.integrations.connections.cli import integration_cli
from app.registry import MODULES
from app.runtime import Runtime, open_runtime
from app.sandbox.server import serve as serve_sandbox
from app.scheduler.cli import jobs_cli
from app.scheduler.engine import job_triggers

cli = typer.Typer(
    name="workflow-hub",
    help="Workflow Hub: serve the API, run workers, migrate and seed.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _settings() -> Settings:
    """The process settings, or a one-line refusal (exit 1) instead of a traceback."""
    try:
        settings = get_settings()
        ensure_safe(settings)
    except InsecureSettingsError as exc:
        fail("insecure_settings", str(exc))
    except ValidationError as exc:
        # Never echo the input: it may be a secret.
        fields = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        fail("invalid_settings", f"invalid settings ({exc.title}): {fields}")
    return settings


def _refuse_prod(settings: Settings, detail: str) -> None:
    if settings.app.env is Environment.PROD:
        fail("refused_in_prod", detail)


@asynccontextmanager
async def _command_runtime() -> AsyncIterator[Runtime]:
    """The process runtime of a one-shot command (``org create``, ``events replay``...)."""
    async with open_runtime(_settings()) as runtime:
        yield runtime


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations."""
    settings = _settings()
    migrations.upgrade(settings.database.url, revision)
    typer.echo(f"database at {revision}")


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo organisation and accounts (idempotent; never with APP_ENV=prod)."""
    settings = _settings()
    _refuse_prod(
        settings, "demo accounts have a published password: never seeded with APP_ENV=prod"
    )

    async def run() -> None:
        async with open_runtime(settings, seed_demo=True):
            pass

    asyncio.run(run())
    typer.echo("demo data seeded")


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's own limits: what it refuses in plain text before the app sees a request.

    The h11 parser is chosen because it enforces a size limit on the request line and headers
    (``APP_HTTP_MAX_HEADER_BYTES``); see docs/errors.md for what uvicorn answers by itself.
    """
    app = settings.app
    return {
        "host": app.host,
        "port": app.port,
        "log_config": None,
        "proxy_headers": True,
        "forwarded_allow_ips": app.forwarded_allow_ips,
        "http": "h11",
        "h11_max_incomplete_event_size": app.http_max_header_bytes,
        "timeout_keep_alive": app.http_keep_alive_seconds,
        "limit_concurrency": app.http_max_concurrency,
        "timeout_graceful_shutdown": 30,
    }


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (APP_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PORT).")] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before serving.")
    ] = True,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (dev).")] = False,
) -> None:
    """Serve the API, with the relay in-process unless EVENTS_RELAY_ENABLED=false (and the
    sandbox when SANDBOX_ENABLED, as `make run` sets)."""
    # The options become the settings create_app() reads (the demo's sandbox URLs use them).
    if host is not None:
        os.environ["APP_HOST"] = host
    if port is not None:
        os.environ["PORT"] = str(port)
    reset_settings()
    settings = _settings()
    _check_crons(settings)
    if migrate_first:
        migrations.upgrade(settings.database.url)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        reload=reload,
        **server_options(settings),
    )


def _check_crons(settings: Settings) -> None:
    """Refuse a job's cron or the time zone that does not parse: one line naming the setting."""
    try:
        job_triggers([job for spec in MODULES for job in spec.jobs], settings.scheduler)
    except InvalidSchedule as exc:
        fail("invalid_settings", str(exc))


@cli.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
) -> None:
    """Serve the Oracle Fusion, Yardi and FCM simulators alone, under /sandbox/* (not in prod)."""
    settings = _settings()
    _refuse_prod(settings, "the sandbox never runs with APP_ENV=prod")
    serve_sandbox(settings, host=host, port=port)


METRICS_PORT = typer.Option(
    min=1, max=65535, help="Serve GET /metrics on this port (APP_METRICS_PORT; default: none)."
)


def _with_metrics_port(settings: Settings, port: int | None) -> Settings:
    if port is not None:
        settings.app = settings.app.model_copy(update={"metrics_port": port})
    return settings


@contextlib.contextmanager
def _metrics_server(settings: Settings) -> Iterator[None]:
    """Serve this process's metrics while it runs, when ``APP_METRICS_PORT`` asks for it."""
    port = settings.app.metrics_port
    if port is None:
        yield
        return
    stop = serve_metrics(settings.app.host, port)
    try:
        yield
    finally:
        stop()


def run_service(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived process (the worker, the scheduler) on uvloop, as uvicorn runs the API.

    asyncio's own loop reads a socket with ``recv(256 KiB)`` and shrinks the result, and glibc
    then serves those 256 KiB requests from the heap (its mmap threshold rises after the first
    ones are freed), leaving the heap fragmented: a relay's RSS grew by about 12 KB a synced user
    and never came back. uvloop reads into one reused buffer and copies out what arrived. The
    standard loop is the fallback where uvloop is not installed (it has no Windows build).
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency wherever it builds
        asyncio.run(main)
        return
    uvloop.run(main)


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Deliveries at once (EVENTS_RELAY_CONCURRENCY).")
    ] = None,
    metrics_port: Annotated[int | None, METRICS_PORT] = None,
) -> None:
    """Run the durable relay until SIGTERM or SIGINT (a second signal stops at once)."""
    settings = _with_metrics_port(_settings(), metrics_port)
    if concurrency is not None:
        settings.events = settings.events.model_copy(update={"relay_concurrency": concurrency})
    with _metrics_server(settings):
        run_service(_run_worker(settings))
    typer.echo("worker stopped")


async def _run_worker(settings: Settings) -> None:
    configure_logging(settings.app)
    # Durable listeners call Oracle and Yardi: the runtime opens the integrations too. The relay
    # runs in the foreground here, so the runtime does not start one of its own; it finishes
    # the scheduler's runs whose deliveries are done, as every relay does.
    async with open_runtime(settings, reconcile=True) as runtime:
        relay = make_relay(runtime.emitter, runtime.database, settings.events)
        signals = 0

        def on_signal() -> None:
            nonlocal signals
            signals += 1
            relay.request_stop(force=signals > 1)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal)
        await relay.serve()


@cli.command()
def scheduler(metrics_port: Annotated[int | None, METRICS_PORT] = None) -> None:
    """Run the crons alone until SIGTERM or SIGINT (the compose file's scheduler service).

    Any number may run: each tick runs once per organisation. The runs fan out in the relays.
    """
    settings = _with_metrics_port(_settings(), metrics_port)
    _check_crons(settings)
    with _metrics_server(settings):
        run_service(_run_scheduler(settings))
    typer.echo("scheduler stopped")


async def _run_scheduler(settings: Settings) -> None:
    configure_logging(settings.app)
    # Signals are handled before the crons start: a SIGTERM while starting stops cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # The runs fan out in the relays: this process needs no integrations of its own.
    async with open_runtime(settings, integrations=False, scheduler=True):
        await stop.wait()


cli.add_typer(events_cli(), name="events")
cli.add_typer(integration_cli, name="integration")


def main() -> None:
    """Entry point of ``python -m app`` and the ``workflow-hub`` script."""
    install_command_runtime(_command_runtime)
    cli.add_typer(jobs_cli(), name="jobs")
    for spec in MODULES:
        if spec.cli is not None:
            cli.add_typer(spec.cli, name=spec.cli_name or spec.name)
        for name, group in spec.extra_cli.items():
            cli.add_typer(group, name=name)
    cli()
