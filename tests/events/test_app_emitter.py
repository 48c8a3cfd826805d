"""The application emitter: typed events, strict names, envelopes, delivery and wiring."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select

from app import contracts
from app.contracts.auth import UserLoggedOut
from app.core.context import correlation_id_var
from app.core.db import Database, DbSession, session_scope
from app.core.modules import ModuleSpec
from app.core.settings import Settings
from app.core.tenancy import Organization, ensure_organization
from app.events import (
    AppEmitter,
    DurableDeliveryUnavailable,
    EmitterNotReady,
    Envelope,
    UnknownEvent,
    current_envelope,
    current_event,
    get_emitter,
    listener,
    publish,
)
from app.events.testing import capture_events
from tests.events.contracts import OrderPlaced, OrderShipped

contracts.load_all()
ORG = uuid.uuid4()


def ready_emitter(**kwargs: Any) -> AppEmitter:
    emitter = AppEmitter(**kwargs)
    emitter.mark_ready()
    return emitter


def test_typed_emit_and_subscription_by_class_or_pattern() -> None:
    emitter = ready_emitter()
    by_class: list[OrderPlaced] = []
    by_pattern: list[str | None] = []
    emitter.on(OrderPlaced, by_class.append)
    emitter.on("test.order.*", lambda event: by_pattern.append(current_event()))
    event = OrderPlaced(organization_id=ORG, order_id=1)
    assert emitter.emit(event) is True
    emitter.emit(OrderShipped(organization_id=ORG, order_id=1))
    assert by_class == [event]
    assert by_pattern == ["test.order.placed", "test.order.shipped"]


async def test_the_app_emitter_takes_names_as_segments_too() -> None:
    emitter = ready_emitter()
    seen: list[tuple[str, str | None]] = []
    emitter.subscribe(("test", "order", "*"), lambda e: seen.append(("pattern", current_event())))
    emitter.on(["test", "order", "placed"], lambda e: seen.append(("exact", current_event())))
    event = OrderPlaced(organization_id=ORG, order_id=1)
    assert emitter.emit(("test", "order", "placed"), event) is True
    assert await emitter.emit_async(["test", "order", "placed"], event) == [None, None]
    assert seen == [("pattern", "test.order.placed"), ("exact", "test.order.placed")] * 2
    with pytest.raises(UnknownEvent):
        emitter.on(("test", "order", "lost"), lambda e: None)


def test_events_are_frozen_and_refuse_unknown_fields() -> None:
    event = OrderPlaced(organization_id=ORG, order_id=1)
    with pytest.raises(ValueError, match="frozen"):
        event.order_id = 2  # type: ignore[misc]
    with pytest.raises(ValueError, match="extra"):
        OrderPlaced(organization_id=ORG, order_id=1, surprise=True)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="organization_id"):
        OrderPlaced(order_id=1)  # type: ignore[call-arg]


def test_strict_mode_refuses_typos_with_close_matches() -> None:
    emitter = ready_emitter()
    with pytest.raises(UnknownEvent, match=r"did you mean 'user\.created'"):
        emitter.on("user.craeted", lambda e: None)
    with pytest.raises(UnknownEvent, match=r"matches no declared event; did you mean 'user\.\*'"):
        emitter.on("usr.*", lambda e: None)
    with pytest.raises(UnknownEvent, match=r"matches no declared event$"):
        emitter.on("zzz.**", lambda e: None)
    with pytest.raises(UnknownEvent, match=r"test\.order\.placed"):
        emitter.emit("test.order.plased", OrderPlaced(organization_id=ORG, order_id=1))
    with pytest.raises(UnknownEvent):
        emitter.once("nope", lambda e: None)


def test_strict_string_emit_must_carry_the_declared_class() -> None:
    emitter = ready_emitter()
    seen: list[Any] = []
    emitter.on(OrderPlaced, seen.append)
    event = OrderPlaced(organization_id=ORG, order_id=3)
    assert emitter.emit("test.order.placed", event) is True
    with pytest.raises(TypeError, match="OrderPlaced"):
        emitter.emit("test.order.placed", {"order_id": 3})
    assert seen == [event]


def test_the_raw_class_stays_permissive_when_not_strict() -> None:
    emitter = ready_emitter(strict=False)
    seen: list[Any] = []
    emitter.on("anything.goes", seen.append)
    emitter.emit("anything.goes", 1)
    assert seen == [1]
    with pytest.raises(ValueError, match="unheard"):  # the error event, as on the raw class
        emitter.emit("error", ValueError("unheard"))


def test_emit_before_ready_raises_in_strict_mode() -> None:
    emitter = AppEmitter()
    with pytest.raises(EmitterNotReady):
        emitter.emit(OrderPlaced(organization_id=ORG, order_id=1))
    emitter.mark_ready()
    assert emitter.emit(OrderPlaced(organization_id=ORG, order_id=1)) is False


def test_envelope_is_readable_by_listeners() -> None:
    emitter = ready_emitter()
    envelopes: list[Envelope | None] = []
    emitter.on(OrderShipped, lambda e: envelopes.append(current_envelope()))
    emitter.emit(OrderShipped(organization_id=ORG, order_id=9))
    envelope = envelopes[0]
    assert envelope is not None
    assert envelope.name == "test.order.shipped"
    assert envelope.version == 2
    assert envelope.organization_id == ORG
    assert envelope.causation_id is None
    assert envelope.correlation_id
    assert envelope.occurred_at.tzinfo is not None
    assert current_envelope() is None
    assert envelope.as_dict()["organization_id"] == str(ORG)


def test_nested_emit_inherits_correlation_and_takes_parent_as_causation() -> None:
    emitter = ready_emitter()
    seen: dict[str, Envelope] = {}

    def on_placed(event: OrderPlaced) -> None:
        envelope = current_envelope()
        assert envelope is not None
        seen["placed"] = envelope
        emitter.emit(OrderShipped(organization_id=ORG, order_id=event.order_id))

    def on_shipped(event: OrderShipped) -> None:
        envelope = current_envelope()
        assert envelope is not None
        seen["shipped"] = envelope

    emitter.on(OrderPlaced, on_placed)
    emitter.on(OrderShipped, on_shipped)
    token = correlation_id_var.set("req-42")
    try:
        emitter.emit(OrderPlaced(organization_id=ORG, order_id=1))
    finally:
        correlation_id_var.reset(token)
    assert seen["placed"].correlation_id == "req-42"
    assert seen["shipped"].correlation_id == "req-42"
    assert seen["shipped"].causation_id == seen["placed"].id


async def test_context_survives_create_task_inside_a_listener() -> None:
    emitter = ready_emitter()
    seen: list[tuple[str | None, str | None]] = []

    async def child() -> None:
        envelope = current_envelope()
        seen.append((envelope.correlation_id if envelope else None, correlation_id_var.get()))

    async def on_placed(event: OrderPlaced) -> None:
        await asyncio.create_task(child())

    emitter.on(OrderPlaced, on_placed)
    await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
    correlation = seen[0][0]
    assert correlation is not None
    assert seen == [(correlation, correlation)]


async def test_raise_errors_reaches_the_caller_of_publish_style_emits() -> None:
    emitter = ready_emitter()

    async def broken(event: OrderPlaced) -> None:
        raise LookupError("oracle down")

    emitter.on(OrderPlaced, broken)
    with pytest.raises(ExceptionGroup) as caught:
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1), raise_errors=True)
    assert isinstance(caught.value.exceptions[0], LookupError)
    assert await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1)) == [None]


def test_failures_are_logged_with_the_correlation_id(caplog: pytest.LogCaptureFixture) -> None:
    emitter = ready_emitter()

    def broken(event: OrderPlaced) -> None:
        raise RuntimeError("nope")

    emitter.on(OrderPlaced, broken)
    token = correlation_id_var.set("corr-7")
    try:
        with caplog.at_level(logging.ERROR, logger="app.events"):
            emitter.emit(OrderPlaced(organization_id=ORG, order_id=1))
    finally:
        correlation_id_var.reset(token)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.correlation_id == "corr-7"  # type: ignore[attr-defined]
    assert record.event == "test.order.placed"  # type: ignore[attr-defined]
    assert "broken" in record.listener  # type: ignore[attr-defined]


def test_durable_without_an_outbox_is_refused_not_lost() -> None:
    emitter = ready_emitter()
    emitter.subscribe(OrderPlaced, lambda e: None, delivery="durable", listener_id="t.durable")
    with pytest.raises(DurableDeliveryUnavailable):
        asyncio.run(emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1)))


def test_listener_decorator_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="delivery"):
        listener(OrderPlaced, delivery="sometimes")  # type: ignore[arg-type]
    emitter = ready_emitter()
    with pytest.raises(ValueError, match="no @listener"):
        emitter.register(lambda e: None)


def test_duplicate_durable_listener_ids_are_refused() -> None:
    emitter = ready_emitter()
    emitter.subscribe(OrderPlaced, lambda e: None, delivery="durable", listener_id="same")
    with pytest.raises(ValueError, match="already subscribed"):
        emitter.subscribe(OrderShipped, lambda e: None, delivery="durable", listener_id="same")


def test_catalog_lists_events_and_listeners() -> None:
    emitter = ready_emitter()

    @listener(OrderPlaced, priority=3)
    @listener("test.order.*", delivery="background")
    def when_order_placed_log(event: OrderPlaced) -> None: ...

    emitter.register(when_order_placed_log, module="orders")
    catalog = emitter.catalog()
    names = {event["name"] for event in catalog["events"]}
    assert {"test.order.placed", "auth.logout", "user.syncProfile"} <= names
    placed = next(e for e in catalog["events"] if e["name"] == "test.order.placed")
    assert placed["publisher"] == "contracts"
    assert "order_id" in placed["schema"]["properties"]
    deliveries = sorted((entry["event"], entry["delivery"]) for entry in placed["listeners"])
    assert deliveries == [("test.order.*", "background"), ("test.order.placed", "inline")]
    assert all(entry["module"] == "orders" for entry in catalog["listeners"])


# -- background delivery and transactions ---------------------------------------------------


async def _org_count(name: str) -> int:
    async with session_scope() as session:
        result = await session.execute(
            select(func.count()).select_from(Organization).where(Organization.name == name)
        )
        return int(result.scalar_one())


async def test_background_runs_after_commit_and_sees_the_committed_rows(db: Database) -> None:
    emitter = ready_emitter()
    seen: list[int] = []

    async def when_placed_count(event: OrderPlaced) -> None:
        seen.append(await _org_count("Committed Co"))

    emitter.subscribe(OrderPlaced, when_placed_count, delivery="background")
    async with session_scope() as session:
        await ensure_organization(session, "Committed Co")
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
        await asyncio.sleep(0.01)
        assert seen == []  # not before commit
    assert await emitter.drain(timeout=5)
    assert seen == [1]


async def test_background_is_discarded_on_rollback(db: Database) -> None:
    emitter = ready_emitter()
    seen: list[OrderPlaced] = []
    emitter.subscribe(OrderPlaced, seen.append, delivery="background")
    with pytest.raises(RuntimeError):
        async with session_scope():
            emitter.emit(OrderPlaced(organization_id=ORG, order_id=1))
            raise RuntimeError("rollback")
    assert await emitter.drain(timeout=5)
    assert seen == []


async def test_a_failed_inline_listener_takes_its_background_work_along(db: Database) -> None:
    emitter = ready_emitter()
    shipped: list[int] = []
    emitter.subscribe(
        OrderShipped, lambda event: shipped.append(event.order_id), delivery="background"
    )

    async def when_placed_ship_then_fail(event: OrderPlaced) -> None:
        emitter.emit(OrderShipped(organization_id=ORG, order_id=event.order_id))
        if event.order_id == 1:
            raise RuntimeError("the carrier refused")

    emitter.on(OrderPlaced, when_placed_ship_then_fail)
    async with session_scope():  # the emitting transaction commits; listener 1's savepoint not
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=2))
    assert await emitter.drain(timeout=5)
    assert shipped == [2]


async def test_background_without_a_transaction_starts_at_once() -> None:
    emitter = ready_emitter()
    seen: list[OrderPlaced] = []
    emitter.subscribe(OrderPlaced, seen.append, delivery="background")
    results = await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
    assert results == []  # background results are never awaited by the caller
    await emitter.drain(timeout=5)
    assert len(seen) == 1


async def test_background_failures_are_isolated_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = ready_emitter()

    async def broken(event: OrderPlaced) -> None:
        raise RuntimeError("background kaput")

    emitter.subscribe(OrderPlaced, broken, delivery="background")
    with caplog.at_level(logging.ERROR, logger="app.events"):
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1), raise_errors=True)
        await emitter.drain(timeout=5)
    assert any("background kaput" in r.getMessage() for r in caplog.records)


async def test_inline_listeners_join_the_emitting_transaction(db: Database) -> None:
    emitter = ready_emitter()

    async def when_placed_create_org(event: OrderPlaced) -> None:
        async with session_scope() as session:
            await ensure_organization(session, f"Joined {event.order_id}")

    emitter.on(OrderPlaced, when_placed_create_org)
    with pytest.raises(RuntimeError):
        async with session_scope():
            await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
            raise RuntimeError("rollback")
    assert await _org_count("Joined 1") == 0
    async with session_scope():
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=2))
    assert await _org_count("Joined 2") == 1


# -- the application's wiring ---------------------------------------------------------------

received: list[tuple[str, Any]] = []


@listener(UserLoggedOut)
async def when_user_logged_out_record(event: UserLoggedOut) -> None:
    received.append(("inline", event.user_id))


@listener(UserLoggedOut, delivery="background")
async def when_user_logged_out_slowly(event: UserLoggedOut) -> None:
    await release_background.wait()
    received.append(("background", event.user_id))


release_background = asyncio.Event()


async def test_create_app_subscribes_module_listeners_and_drains_on_shutdown(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import app.main as main
    import app.runtime as runtime
    from app import registry

    probe = ModuleSpec(
        name="probe", listeners=(when_user_logged_out_record, when_user_logged_out_slowly)
    )
    monkeypatch.setattr(runtime, "MODULES", (*registry.MODULES, probe))
    received.clear()
    release_background.clear()
    application = main.create_app(settings)
    emitter: AppEmitter = application.state.emitter
    assert emitter.listener_count(UserLoggedOut) >= 2
    user_id = uuid.uuid4()
    async with application.router.lifespan_context(application):
        assert get_emitter() is emitter
        await publish(UserLoggedOut(organization_id=ORG, user_id=user_id, session_id=user_id))
        assert received == [("inline", user_id)]
        asyncio.get_running_loop().call_later(0.02, release_background.set)
    # shutdown drained the background listener before returning
    assert received == [("inline", user_id), ("background", user_id)]
    assert emitter.has_listeners() is False


async def test_each_app_gets_a_fresh_emitter(settings: Settings) -> None:
    from app.main import create_app

    first, second = create_app(settings), create_app(settings)
    assert first.state.emitter is not second.state.emitter
    first.state.emitter.on(OrderPlaced, lambda e: None)
    assert second.state.emitter.listener_count(OrderPlaced) == 0


async def test_the_request_correlation_id_reaches_the_envelope(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    router = APIRouter()

    @router.post("/test/orders")
    async def place() -> dict[str, str]:
        await publish(OrderPlaced(organization_id=ORG, order_id=5))
        return {"ok": "yes"}

    app.include_router(router)
    with capture_events(app.state.emitter) as captured:
        response = await client.post("/test/orders", headers={"X-Request-ID": "req-from-client"})
    assert response.status_code == 200
    event = captured.one(OrderPlaced)
    assert event.order_id == 5
    envelope = captured.envelope_of(event)
    assert envelope is not None
    assert envelope.correlation_id == "req-from-client"
    assert captured.names() == ["test.order.placed"]


async def test_inline_listeners_join_the_request_transaction(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    router = APIRouter()
    seen: list[bool] = []

    async def when_placed_check_session(event: OrderPlaced) -> None:
        async with session_scope() as session:
            seen.append(session is request_sessions[-1])
            await ensure_organization(session, f"Listener {event.order_id}")

    request_sessions: list[object] = []

    @router.post("/test/orders/{order_id}")
    async def place(order_id: int, session: DbSession) -> dict[str, str]:
        request_sessions.append(session)
        await publish(OrderPlaced(organization_id=ORG, order_id=order_id))
        if order_id < 0:
            raise RuntimeError("the request fails after the listener ran")
        return {"ok": "yes"}

    app.include_router(router)
    app.state.emitter.on(OrderPlaced, when_placed_check_session)
    assert (await client.post("/test/orders/1")).status_code == 200
    assert (await client.post("/test/orders/-1")).status_code == 500
    assert seen == [True, True]
    assert await _org_count("Listener 1") == 1
    assert await _org_count("Listener -1") == 0


async def test_a_listener_whose_sql_fails_rolls_back_alone(db: Database) -> None:
    emitter = ready_emitter()

    async def when_placed_break_the_database(event: OrderPlaced) -> None:
        async with session_scope() as session:
            session.add(Organization(name="Partial Co"))
            session.add(Organization(name="Base Co"))  # a duplicate: the flush fails
            await session.flush()

    async def when_placed_write(event: OrderPlaced) -> None:
        async with session_scope() as session:
            await ensure_organization(session, "Good Co")

    emitter.on(OrderPlaced, when_placed_break_the_database)
    emitter.on(OrderPlaced, when_placed_write)
    async with session_scope() as session:
        await ensure_organization(session, "Base Co")
        results = await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
        assert results == [None, None]
        await ensure_organization(session, "After Co")
    assert [await _org_count(n) for n in ("Base Co", "Partial Co", "Good Co", "After Co")] == [
        1,
        0,
        1,
        1,
    ]


async def test_inline_listeners_sharing_a_transaction_run_one_by_one(db: Database) -> None:
    emitter = ready_emitter()
    running = 0
    peak = 0

    async def when_placed_write(event: OrderPlaced) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        async with session_scope() as session:
            await ensure_organization(session, f"Shared {running}")
            await asyncio.sleep(0.01)
        running -= 1

    for _ in range(3):
        emitter.on(OrderPlaced, when_placed_write)
    async with session_scope():
        await emitter.emit_async(OrderPlaced(organization_id=ORG, order_id=1))
    assert peak == 1


async def test_sensitive_events_reach_inline_listeners_only(db: Database) -> None:
    from app.contracts.user import UserCredentialsChanged

    emitter = ready_emitter()
    with pytest.raises(ValueError, match="sensitive"):
        emitter.subscribe(UserCredentialsChanged, lambda e: None, delivery="durable")
    with pytest.raises(ValueError, match="sensitive"):
        emitter.subscribe(UserCredentialsChanged, lambda e: None, delivery="background")
    stored: list[object] = []
    seen: list[object] = []
    emitter.subscribe("user.**", stored.append, delivery="background")
    emitter.on("user.**", seen.append)
    event = UserCredentialsChanged(
        organization_id=ORG, user_id=uuid.uuid4(), password_hash="$argon2id$..."
    )
    await emitter.emit_async(event)
    await emitter.drain(timeout=5)
    assert seen == [event]
    assert stored == []
