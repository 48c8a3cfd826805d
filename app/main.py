"""The composition root: ``create_app()`` wires settings, routes, middleware and the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.console import install_console
from app.core import health
from app.core.errors import install_error_handlers
from app.core.inputs import RequestLimits
from app.core.logging import configure_logging
from app.core.metrics import instrument_http, resolve_routes
from app.core.middleware import CorrelationIdMiddleware
from app.core.openapi import install_openapi
from app.core.security import install_session_validator
from app.core.settings import Settings, ensure_safe, get_settings
from app.core.tracing import instrument_app
from app.events.api import router as events_router
from app.events.outbox.api import router as deliveries_router
from app.events.runtime import set_emitter
from app.integrations.connections.router import router as connections_router
from app.integrations.problems import install_integration_error_handler
from app.registry import MODULES
from app.runtime import build_emitter, open_runtime, start_tracing
from app.sandbox import build_sandbox
from app.scheduler.catalog import registered_jobs
from app.scheduler.engine import job_triggers
from app.scheduler.router import router as jobs_router

logger = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


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
        # The relay (EVENTS_RELAY_ENABLED) and the scheduler (SCHEDULER_ENABLED) run
        # in-process; the sandbox (SANDBOX_ENABLED) needs nothing here: create_app() mounts it.
        async with open_runtime(
            settings,
            emitter=emitter,
            seed_demo=settings.app.seed_demo,
            relay=settings.events.relay_enabled,
            scheduler=settings.scheduler.enabled,
        ) as runtime:
            app.state.database = runtime.database
            app.state.integrations = runtime.integrations
            app.state.relay = runtime.relay
            app.state.scheduler = runtime.scheduler
            resolve_routes(app)
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
    install_openapi(app, api_prefix=API_PREFIX)
    install_integration_error_handler(app)
    app.add_middleware(
        RequestLimits,
        max_body_bytes=settings.app.max_body_bytes,
        small_body_bytes=settings.app.max_auth_body_bytes,
        small_body_paths=(f"{API_PREFIX}/auth/", "/console/login"),
    )
    instrument_http(app)  # inside the correlation id: a 500 it renders is counted too
    app.add_middleware(CorrelationIdMiddleware)  # outermost: every answer carries the id
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
    if start_tracing(settings):
        instrument_app(app)
    if settings.sandbox.enabled:
        sandbox = build_sandbox(settings.sandbox)
        app.state.sandbox = sandbox.state
        app.mount("/sandbox", sandbox.app)
    return app


def __getattr__(name: str) -> FastAPI:
    """Build ``app`` on first access: ``uvicorn app.main:app`` works, importing has no effects."""
    if name == "app":
        return create_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
