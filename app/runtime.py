"""One process runtime: the only place a process assembles itself.

The API's lifespan, ``python -m app worker``, ``python -m app scheduler``, ``seed-demo`` and
every one-shot command (module commands, ``events ...``, ``jobs ...``) open the same runtime::

    async with open_runtime(settings) as runtime:
        await work(runtime.emitter)

It opens, in this order, and closes in reverse on the way out (error or not):

1. the process database (``DATABASE_*``);
2. the integration HTTP clients and the push gateway, before anything that may call them;
3. the application emitter, installed and ready (on the way out it drains its background
   listeners while the integrations are still open, then refuses new emits);
4. the demo data, when asked (``seed_demo=True``);
5. an in-process durable relay, when asked (``relay=True``);
6. the scheduler's crons, when asked (``scheduler=True``);
7. the run reconciler, which finishes scheduler runs whose deliveries are done, with a relay or
   when asked (``reconcile=True``, as ``python -m app worker`` does), unless the scheduler runs
   here (it reconciles itself).

Logging is the caller's: the API configures it in ``create_app()``, the worker on start.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from app import contracts
from app.core.db import Database, close_database, init_database, session_scope
from app.core.modules import ModuleSpec
from app.core.settings import Settings
from app.core.tenancy import ensure_organization
from app.core.tracing import configure_tracing
from app.events import AppEmitter
from app.events import tracing as event_tracing
from app.events.base import event_types
from app.events.outbox import install_outbox, start_relay
from app.events.outbox.relay import Relay
from app.events.outbox.runtime import import_listeners
from app.events.runtime import (
    UndeclaredPublication,
    declare_publishers,
    get_emitter,
    set_emitter,
)
from app.integrations.runtime import (
    Integrations,
    clear_integrations,
    open_integrations,
    set_integrations,
)
from app.registry import MODULES
from app.sandbox.seed import seed_demo_connections
from app.scheduler import listeners as scheduler_listeners
from app.scheduler.catalog import install_jobs, registered_jobs
from app.scheduler.engine import RunReconciler, Scheduler

logger = logging.getLogger(__name__)

DEMO_ORGANIZATION = "Demo"


@dataclass(frozen=True, slots=True)
class Runtime:
    """What an open runtime holds; see :func:`open_runtime`."""

    settings: Settings
    database: Database
    emitter: AppEmitter
    integrations: Integrations | None
    """``None`` when opened with ``integrations=False``."""
    relay: Relay | None
    """The in-process relay when opened with ``relay=True``, else ``None``."""
    scheduler: Scheduler | None
    """The running scheduler when opened with ``scheduler=True``, else ``None``."""


def check_publishes(modules: Sequence[ModuleSpec]) -> None:
    """Check that every module publishes exactly the events its contract file declares.

    Contracts are one file per publishing module, so ``app/contracts/<name>.py`` is what module
    ``<name>`` may publish. Each event a module lists in ``publishes`` must come from its own
    contract file, and every event of that file must be listed, so ``module.py`` tells the whole
    truth. :func:`build_emitter` then declares the lists, and ``publish()`` refuses an event
    that a module's code publishes without listing it.

    Raises:
        UndeclaredPublication: naming the module and the events.
    """
    contracts.load_all()
    owned: dict[str, set[str]] = {}
    for name, cls in event_types().items():
        owner = cls.__module__.removeprefix(f"{contracts.__name__}.")
        owned.setdefault(owner, set()).add(name)
    for spec in modules:
        declared = {cls.name for cls in spec.publishes}
        foreign = sorted(
            cls.name
            for cls in spec.publishes
            if cls.__module__ != f"{contracts.__name__}.{spec.name}"
        )
        if foreign:
            raise UndeclaredPublication(
                f"module {spec.name!r} lists events of other publishers: {', '.join(foreign)} "
                f"(its events are declared in app/contracts/{spec.name}.py)"
            )
        missing = sorted(owned.get(spec.name, set()) - declared)
        if missing:
            raise UndeclaredPublication(
                f"module {spec.name!r} does not list {', '.join(missing)} in publishes, "
                f"though app/contracts/{spec.name}.py declares them"
            )


def build_emitter(settings: Settings) -> AppEmitter:
    """Create a fresh application emitter with every module's listeners subscribed.

    Its durable deliveries go to the outbox of the process database, and the listeners named
    by ``EVENTS_EXTRA_LISTENERS`` (tests and benchmarks; refused in prod) are subscribed too.

    Raises:
        UndeclaredPublication: a module's ``publishes`` disagrees with its contracts.
    """
    check_publishes(MODULES)
    declare_publishers(
        {f"app.modules.{spec.name}": {cls.name for cls in spec.publishes} for spec in MODULES}
    )
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


def start_tracing(settings: Settings) -> bool:
    """Turn tracing on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` asks for it (``app/core/tracing``),
    the emitter's spans with it; return whether it is on."""
    on = configure_tracing(settings.app.name)
    event_tracing.enable(on)
    return on


async def seed_demo_data() -> None:
    """Create the demo organisation and run every module's idempotent seed, in one transaction."""
    async with session_scope() as session:
        organization = await ensure_organization(session, DEMO_ORGANIZATION)
        for spec in MODULES:
            if spec.seed_demo is not None:
                await spec.seed_demo(session, organization)
        await seed_demo_connections(session, organization)


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    emitter: AppEmitter | None = None,
    integrations: bool = True,
    seed_demo: bool = False,
    relay: bool = False,
    scheduler: bool = False,
    reconcile: bool | None = None,
) -> AsyncIterator[Runtime]:
    """Open the process runtime; close everything it opened on exit, in reverse order.

    Args:
        settings: the process settings (already checked with ``ensure_safe``).
        emitter: the application emitter to install (``create_app()`` builds it up front to
            expose it on ``app.state``); by default a fresh one from :func:`build_emitter`.
        integrations: open the integration HTTP clients and the push gateway (installed for
            ``get_integrations()``).
        seed_demo: create the demo organisation and accounts once everything is ready.
        relay: start a durable relay in the background (the API's ``EVENTS_RELAY_ENABLED``).
            ``python -m app worker`` leaves it off and serves its own relay in the foreground.
        scheduler: start the crons of every module's jobs (the API's ``SCHEDULER_ENABLED``,
            and ``python -m app scheduler``).
        reconcile: finish runs whose deliveries are done (by default with a relay), so that a
            run finishes whether or not a scheduler process is alive. Ignored with the
            scheduler, which reconciles itself.

    Yields:
        The open :class:`Runtime`.
    """
    emitter = emitter or build_emitter(settings)
    start_tracing(settings)
    async with AsyncExitStack() as stack:
        database = init_database(settings.database)
        stack.push_async_callback(close_database)
        opened: Integrations | None = None
        if integrations:
            opened = await stack.enter_async_context(open_integrations(settings))
            set_integrations(opened)
            stack.callback(clear_integrations, opened)
        set_emitter(emitter)
        emitter.mark_ready()
        stack.push_async_callback(_stop_emitter, emitter, settings.events.drain_timeout_seconds)
        if seed_demo:
            await seed_demo_data()
        running: Relay | None = None
        if relay:
            running = await start_relay(emitter, database, settings.events)
            stack.push_async_callback(running.stop)
        crons: Scheduler | None = None
        if scheduler:
            crons = Scheduler(registered_jobs(), settings.scheduler)
            crons.start()
            stack.push_async_callback(crons.stop)
        elif relay if reconcile is None else reconcile:
            reconciler = RunReconciler(settings.scheduler)
            reconciler.start()
            stack.push_async_callback(reconciler.stop)
        yield Runtime(settings, database, emitter, opened, running, crons)


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
