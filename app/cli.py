"""``python -m app``: the operator's command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import typer
import uvicorn
from pydantic import ValidationError

from app.core.settings import (
    Environment,
    InsecureSettingsError,
    Settings,
    ensure_safe,
    get_settings,
    reset_settings,
)
from app.events import AppEmitter
from app.events.outbox.cli import events_cli
from app.integrations.connections.cli import integration_cli

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
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    except ValidationError as exc:
        # Never echo the input: it may be a secret.
        fields = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors()
        )
        typer.echo(f"invalid settings ({exc.title}): {fields}", err=True)
        raise typer.Exit(1) from None
    return settings


@cli.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations."""
    from app.core import migrations

    settings = _settings()
    migrations.upgrade(settings.database.url, revision)
    typer.echo(f"database at {revision}")


@cli.command("seed-demo")
def seed_demo() -> None:
    """Create the demo organisation and accounts (idempotent; never with APP_ENV=prod)."""
    from app.core.db import close_database, init_database
    from app.events.runtime import set_emitter
    from app.main import build_emitter, seed_demo_data

    settings = _settings()
    if settings.app.env is Environment.PROD:
        typer.echo(
            "demo accounts have a published password: never seeded with APP_ENV=prod", err=True
        )
        raise typer.Exit(1)

    async def run() -> None:
        init_database(settings.database)
        emitter = build_emitter(settings)
        set_emitter(emitter)
        emitter.mark_ready()
        try:
            await seed_demo_data()
            await emitter.close(settings.events.drain_timeout_seconds)
        finally:
            set_emitter(None)
            await close_database()

    asyncio.run(run())
    typer.echo("demo data seeded")


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
        from app.core import migrations

        migrations.upgrade(settings.database.url)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=settings.app.host,
        port=settings.app.port,
        reload=reload,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips=settings.app.forwarded_allow_ips,
        timeout_graceful_shutdown=30,
    )


def _check_crons(settings: Settings) -> None:
    """Refuse a job's cron or the time zone that does not parse: one line naming the setting."""
    from app.core.crontab import InvalidSchedule
    from app.registry import MODULES
    from app.scheduler.engine import job_triggers

    try:
        job_triggers([job for spec in MODULES for job in spec.jobs], settings.scheduler)
    except InvalidSchedule as exc:
        typer.echo(f"invalid settings: {exc}", err=True)
        raise typer.Exit(1) from None


def _build_emitter(settings: Settings) -> AppEmitter:
    from app.main import build_emitter

    return build_emitter(settings)


cli.add_typer(events_cli(_settings, _build_emitter), name="events")
cli.add_typer(integration_cli, name="integration")


@cli.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8100,
) -> None:
    """Serve the Oracle Fusion, Yardi and FCM simulators alone, under /sandbox/* (not in prod)."""
    from app.sandbox.server import serve as serve_sandbox

    settings = _settings()
    if settings.app.env is Environment.PROD:
        typer.echo("the sandbox never runs with APP_ENV=prod", err=True)
        raise typer.Exit(1)
    serve_sandbox(settings, host=host, port=port)


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Deliveries at once (EVENTS_RELAY_CONCURRENCY).")
    ] = None,
) -> None:
    """Run the durable relay until SIGTERM or SIGINT (a second signal stops at once)."""
    settings = _settings()
    if concurrency is not None:
        settings.events = settings.events.model_copy(update={"relay_concurrency": concurrency})
    asyncio.run(_run_worker(settings))
    typer.echo("worker stopped")


async def _run_worker(settings: Settings) -> None:
    import signal

    from app.core.db import close_database, init_database
    from app.core.logging import configure_logging
    from app.events.outbox.runtime import make_relay
    from app.events.runtime import set_emitter
    from app.integrations.runtime import clear_integrations, open_integrations, set_integrations

    configure_logging(settings.app)
    database = init_database(settings.database)
    emitter = _build_emitter(settings)
    set_emitter(emitter)
    emitter.mark_ready()
    relay = make_relay(emitter, database, settings.events)
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        relay.request_stop(force=signals > 1)

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        # Durable listeners call Oracle and Yardi: the worker opens the integrations too.
        async with open_integrations(settings) as integrations:
            set_integrations(integrations)
            await relay.serve()
            await emitter.close(settings.events.drain_timeout_seconds)
            clear_integrations(integrations)
    finally:
        set_emitter(None)
        await close_database()


@cli.command()
def scheduler() -> None:
    """Run the crons alone until SIGTERM or SIGINT (the compose file's scheduler service).

    Any number may run: each tick runs once per organisation. The runs fan out in the relays.
    """
    settings = _settings()
    _check_crons(settings)
    asyncio.run(_run_scheduler(settings))
    typer.echo("scheduler stopped")


async def _run_scheduler(settings: Settings) -> None:
    import signal

    from app.core.db import close_database, init_database
    from app.core.logging import configure_logging
    from app.events.runtime import set_emitter
    from app.scheduler.catalog import registered_jobs
    from app.scheduler.engine import Scheduler

    configure_logging(settings.app)
    emitter = _build_emitter(settings)
    scheduler = Scheduler(registered_jobs(), settings.scheduler)  # refuses a bad cron first
    init_database(settings.database)
    set_emitter(emitter)
    emitter.mark_ready()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        scheduler.start()
        await stop.wait()
        await scheduler.stop()
        await emitter.close(settings.events.drain_timeout_seconds)
    finally:
        set_emitter(None)
        await close_database()


@asynccontextmanager
async def _command_runtime() -> AsyncIterator[None]:
    """The database and the application emitter, for module commands (``org create``...)."""
    from app.core.db import close_database, init_database
    from app.events.runtime import set_emitter
    from app.main import build_emitter

    settings = _settings()
    init_database(settings.database)
    emitter = build_emitter(settings)
    set_emitter(emitter)
    emitter.mark_ready()
    try:
        yield
        await emitter.close(settings.events.drain_timeout_seconds)
    finally:
        set_emitter(None)
        await close_database()


def main() -> None:
    """Entry point of ``python -m app`` and the ``workflow-hub`` script."""
    from app.core.commands import install_command_runtime
    from app.registry import MODULES
    from app.scheduler.cli import jobs_cli

    install_command_runtime(_command_runtime)
    cli.add_typer(jobs_cli(_command_runtime), name="jobs")
    for spec in MODULES:
        if spec.cli is not None:
            cli.add_typer(spec.cli, name=spec.cli_name or spec.name)
        for name, group in spec.extra_cli.items():
            cli.add_typer(group, name=name)
    cli()
