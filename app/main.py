"""The composition root: ``create_app()`` wires settings, database, modules and lifecycle."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from app import contracts
from app.console import install_console
from app.core import health
from app.core.db import close_database, init_database, session_scope
from app.core.errors import install_error_handlers
from app.core.logging import configure_logging
from app.core.middleware import CorrelationIdMiddleware
from app.core.security import install_session_validator
from app.core.settings import Settings, ensure_safe, get_settings
from app.core.tenancy import ensure_organization
from app.events import AppEmitter
from app.events.api import router as events_router
from app.events.outbox import install_outbox, start_relay
from app.events.outbox.api import router as deliveries_router
from app.events.outbox.runtime import import_listeners
from app.events.runtime import get_emitter, set_emitter
from app.integrations.connections.router import router as connections_router
from app.integrations.problems import install_integration_error_handler
from app.integrations.runtime import clear_integrations, open_integrations, set_integrations
from app.registry import MODULES
from app.sandbox import build_sandbox
from app.sandbox.seed import seed_demo_connections
from app.scheduler import listeners as scheduler_listeners
from app.scheduler.catalog import install_jobs, registered_jobs
from app.scheduler.engine import Scheduler, job_triggers
from app.scheduler.router import router as jobs_router

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


DEMO_ORGANIZATION = "Demo"


async def seed_demo_data() -> None:
    """Create the demo organisation and run every module's idempotent seed, in one transaction."""
    async with session_scope() as session:
        organization = await ensure_organization(session, DEMO_ORGANIZATION)
        for spec in MODULES:
            if spec.seed_demo is not None:
                await spec.seed_demo(session, organization)
        await seed_demo_connections(session, organization)


def build_emitter(settings: Settings) -> AppEmitter:
    """Create a fresh application emitter with every module's listeners subscribed.

    Its durable deliveries go to the outbox of the process database, and the listeners named
    by ``EVENTS_EXTRA_LISTENERS`` (tests and benchmarks; refused in prod) are subscribed too.
    """
    contracts.load_all()
    emitter = AppEmitter(strict=settings.events.strict, max_listeners=settings.events.max_listeners)
    for spec in MODULES:
        for fn in spec.listeners:
            emitter.register(fn, module=spec.name)
    emitter.register(scheduler_listeners.when_job_run_started_fan_out, module="scheduler")
    install_jobs(job for spec in MODULES for job in spec.jobs)
    for fn in import_listeners(settings.events.extra_listeners):
        emitter.register(fn, module="extra")
    install_outbox(emitter)
    return emitter


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application: routes, error handlers, middleware, emitter and lifespan."""
    settings = settings or get_settings()
    ensure_safe(settings)
    configure_logging(settings.app)
    emitter = build_emitter(settings)
    set_emitter(emitter)
    job_triggers(registered_jobs(), settings.scheduler)  # a bad cron refuses to build the app

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            database = init_database(settings.database)
            stack.push_async_callback(close_database)
            app.state.database = database
            # The integration HTTP clients and the push gateway open before anything that may
            # call them (the seed, background listeners, the relay, the scheduler) and close
            # after those have stopped.
            integrations = await stack.enter_async_context(open_integrations(settings))
            set_integrations(integrations)
            stack.callback(clear_integrations, integrations)
            app.state.integrations = integrations
            # The emitter: ready once every listener is subscribed; on shutdown, drain
            # background listeners (cancelling what outlives the timeout) while the
            # integrations are still open, then refuse new emits.
            set_emitter(emitter)
            emitter.mark_ready()
            stack.push_async_callback(_stop_emitter, emitter, settings.events.drain_timeout_seconds)
            if settings.app.seed_demo:
                await seed_demo_data()
            # Started in this order, stopped in reverse:
            # 1. the durable relay (EVENTS_RELAY_ENABLED),
            if settings.events.relay_enabled:
                app.state.relay = await start_relay(emitter, database, settings.events)
                stack.push_async_callback(app.state.relay.stop)
            # 2. the scheduler (SCHEDULER_ENABLED): it fires the crons and finishes runs,
            if settings.scheduler.enabled:
                scheduler = Scheduler(registered_jobs(), settings.scheduler)
                scheduler.start()
                app.state.scheduler = scheduler
                stack.push_async_callback(scheduler.stop)
            # 3. the sandbox (SANDBOX_ENABLED) needs nothing here: create_app() mounts it.
            logger.info("%s ready (env=%s)", settings.app.name, settings.app.env.value)
            yield
        logger.info("%s stopped", settings.app.name)

    app = FastAPI(
        title=settings.app.name,
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.emitter = emitter
    install_error_handlers(app)
    install_integration_error_handler(app)
    app.add_middleware(CorrelationIdMiddleware)
    app.include_router(health.router)
    app.include_router(events_router, prefix=API_PREFIX)
    app.include_router(deliveries_router, prefix=API_PREFIX)
    app.include_router(connections_router, prefix=API_PREFIX)
    app.include_router(jobs_router, prefix=API_PREFIX)
    for spec in MODULES:
        if spec.router is not None:
            app.include_router(spec.router, prefix=API_PREFIX)
        if spec.session_validator is not None:
            install_session_validator(app, spec.session_validator)
    install_console(app)
    if settings.sandbox.enabled:
        sandbox = build_sandbox(settings.sandbox)
        app.state.sandbox = sandbox.state
        app.mount("/sandbox", sandbox.app)
    return app


async def _stop_emitter(emitter: AppEmitter, timeout: float) -> None:
    await emitter.close(timeout)
    emitter.mark_ready(False)
    if _installed(emitter):
        set_emitter(None)


def _installed(emitter: AppEmitter) -> bool:
    try:
        return get_emitter() is emitter
    except RuntimeError:
        return False


def __getattr__(name: str) -> FastAPI:
    """Build ``app`` on first access: ``uvicorn app.main:app`` works, importing has no effects."""
    if name == "app":
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
