"""EventEmitter2 parity: the cases of EE2's own suite that ours failed, and the EE2 features
added for them (meta-events, listen_to, segment names, the error event, call_soon, promisify)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from app.events import EventEmitter, current_event
from app.events.emitter import RelayedEvent, UnhandledErrorEvent

# -- argument checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda em: em.off("e", "not a function"),
        lambda em: em.off_any("not a function"),
        lambda em: em.once("e", "not a function"),
        lambda em: em.many("e", 2, "not a function"),
        lambda em: em.prepend_listener("e", "not a function"),
        lambda em: em.on_any("not a function"),
        lambda em: em.on_any(None),
    ],
    ids=["off", "off_any", "once", "many", "prepend_listener", "on_any", "on_any(None)"],
)
def test_every_subscription_method_refuses_a_listener_that_is_not_callable(
    call: Callable[[EventEmitter], Any],
) -> None:
    emitter = EventEmitter()
    with pytest.raises(TypeError, match="callable"):
        call(emitter)
    assert emitter.has_listeners() is False
    assert emitter.emit("e") is False  # nothing half-subscribed "runs" on the next emit


def test_many_refuses_a_count_that_is_not_a_positive_integer() -> None:
    emitter = EventEmitter()
    with pytest.raises(TypeError, match="integer"):
        emitter.many("e", "2", lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n >= 1"):
        emitter.many("e", 0, lambda: None)


# -- wait_for -----------------------------------------------------------------------------------


async def test_wait_for_listens_from_the_call_not_from_its_first_await() -> None:
    emitter = EventEmitter()
    task = asyncio.create_task(emitter.wait_for("x"))
    assert emitter.listener_count("x") == 1  # already listening: the task has not run yet
    emitter.emit("x", 42)
    assert await asyncio.wait_for(task, 1) == 42
    assert emitter.listener_count("x") == 0


async def test_wait_for_returns_a_future_that_is_already_listening() -> None:
    emitter = EventEmitter()
    waiting = emitter.wait_for("x", predicate=lambda n, *_: n > 1)
    assert isinstance(waiting, asyncio.Future)
    emitter.emit("x", 1)
    assert not waiting.done()
    emitter.emit("x", 2, "two")
    assert waiting.result() == (2, "two")
    assert emitter.has_listeners("x") is False


async def test_cancelling_a_wait_unsubscribes_it_whether_future_or_task() -> None:
    emitter = EventEmitter()
    waiting = emitter.wait_for("x")
    waiting.cancel()
    assert emitter.listener_count("x") == 0
    task = asyncio.create_task(emitter.wait_for("x"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert emitter.listener_count("x") == 0
    assert emitter.emit("x", 1) is False


async def test_a_wait_that_times_out_unsubscribes() -> None:
    emitter = EventEmitter()
    waiting = emitter.wait_for("x", timeout=0.01)
    with pytest.raises(TimeoutError):
        await waiting
    assert emitter.listener_count("x") == 0


async def test_wait_for_and_once_reject_on_the_error_event_when_asked() -> None:
    emitter = EventEmitter()
    waiting = emitter.wait_for("x", handle_error=True)
    once = emitter.once("x", handle_error=True)
    plain = emitter.wait_for("x")
    emitter.emit("error", ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        await waiting
    with pytest.raises(ValueError, match="boom"):
        await once
    assert not plain.done()  # not asked: the error event is not its business
    assert emitter.listener_count("error") == 0
    emitter.emit("x", 1)
    assert await plain == 1


async def test_once_without_a_listener_is_a_one_shot_wait() -> None:
    emitter = EventEmitter()
    waiting = emitter.once("ready")
    emitter.emit("ready", "go")
    assert await waiting == "go"
    with pytest.raises(TypeError, match="call_soon"):
        emitter.once("ready", call_soon=True)  # type: ignore[call-overload]


# -- meta-events --------------------------------------------------------------------------------


def test_new_listener_and_remove_listener_are_emitted_when_asked() -> None:
    emitter = EventEmitter(new_listener=True, remove_listener=True)
    added: list[tuple[Any, ...]] = []
    removed: list[tuple[Any, ...]] = []
    emitter.on("newListener", lambda *args: added.append(args))
    emitter.on("removeListener", lambda *args: removed.append(args))

    def listener() -> None: ...

    def catch_all(*_: Any) -> None: ...

    handle = emitter.on("user.*", listener)
    emitter.once("user.created", listener)
    emitter.on_any(catch_all)
    assert added == [
        ("removeListener", emitter.listeners("removeListener")[0]),
        ("user.*", listener),
        ("user.created", listener),
    ]  # catch-alls have no newListener in EventEmitter2 either
    emitter.emit("user.created")  # the once-listener is used up
    handle.off()
    assert removed == [("user.created", listener), ("user.*", listener)]
    any_removed: list[Any] = []
    emitter.on("removeListenerAny", any_removed.append)
    emitter.off_any(catch_all)
    assert any_removed == [catch_all]


def test_meta_events_are_off_unless_asked() -> None:
    emitter = EventEmitter()
    meta: list[Any] = []
    emitter.on("newListener", lambda *args: meta.append(args))
    emitter.on("removeListener", lambda *args: meta.append(args))
    emitter.on("e", lambda: None).off()
    assert meta == []


# -- listen_to ----------------------------------------------------------------------------------


class PlainSource:
    """Not an EventEmitter: anything with on(event, handler) and off(event, handler)."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Callable[..., Any]]] = {}

    def on(self, event: str, handler: Callable[..., Any]) -> None:
        self.handlers.setdefault(event, []).append(handler)

    def off(self, event: str, handler: Callable[..., Any]) -> None:
        self.handlers[event].remove(handler)

    def fire(self, event: str, *args: Any) -> None:
        for handler in list(self.handlers.get(event, [])):
            handler(*args)


def test_listen_to_relays_another_emitters_events_until_stopped() -> None:
    source, emitter = EventEmitter(), EventEmitter()
    seen: list[tuple[str | None, Any]] = []
    emitter.on("**", lambda value: seen.append((current_event(), value)))
    emitter.listen_to(source, ["user.created", "user.deleted"])
    emitter.listen_to(source, {"order.placed": "shop.order"})  # relayed under a new name
    source.emit("user.created", 1)
    source.emit("order.placed", 2)
    source.emit("user.updated", 3)  # not asked for
    assert seen == [("user.created", 1), ("shop.order", 2)]
    assert emitter.stop_listening_to(source, "user.created") is True
    source.emit("user.created", 4)
    source.emit("user.deleted", 5)
    assert seen[-1] == ("user.deleted", 5)
    assert emitter.stop_listening_to(source) is True
    assert source.has_listeners() is False
    assert emitter.stop_listening_to(source) is False


def test_listen_to_a_plain_object_with_reducers() -> None:
    source, emitter = PlainSource(), EventEmitter()
    seen: list[Any] = []
    emitter.on("tick", seen.append)

    def only_even(event: RelayedEvent) -> bool:
        assert (event.name, event.original) == ("tick", "tick")
        event.args = [event.args[0] * 10]
        return bool(event.args[0] % 20 == 0)

    emitter.listen_to(source, "tick", reducers={"tick": only_even})
    for n in range(1, 5):
        source.fire("tick", n)
    assert seen == [20, 40]
    assert emitter.stop_listening_to() is True
    assert source.handlers == {"tick": []}


def test_listen_to_refuses_a_target_it_cannot_subscribe_to() -> None:
    with pytest.raises(TypeError, match="on/off"):
        EventEmitter().listen_to(object(), "x")


# -- names as segments --------------------------------------------------------------------------


def test_event_names_may_be_given_as_segments_wherever_a_name_is_accepted() -> None:
    emitter = EventEmitter()
    seen: list[Any] = []

    def exact(value: Any) -> None:
        seen.append(("exact", value))

    emitter.on(("user", "created"), exact)
    emitter.on(["user", "*"], lambda value: seen.append(("pattern", value)))
    assert emitter.emit(("user", "created"), 1) is True
    assert emitter.emit("user.created", 2) is True
    assert seen == [("exact", 1), ("pattern", 1), ("exact", 2), ("pattern", 2)]
    assert emitter.listener_count(("user", "created")) == 2
    assert sorted(emitter.event_names(as_sequence=True)) == [("user", "*"), ("user", "created")]
    assert emitter.off(("user", "created"), exact) is True
    with pytest.raises(ValueError, match="segment"):
        emitter.on(("user.created", "x"), exact)
    with pytest.raises(ValueError, match="segment"):
        emitter.emit(("user", ""))


async def test_segment_names_reach_emit_async_and_wait_for() -> None:
    emitter = EventEmitter()
    waiting = emitter.wait_for(("job", "done"))
    emitter.on(("job", "done"), lambda n: n * 2)
    assert await emitter.emit_async(("job", "done"), 21) == [None, 42]
    assert await waiting == 21


# -- the error event ----------------------------------------------------------------------------


async def test_an_error_event_nobody_listens_to_is_raised() -> None:
    emitter = EventEmitter()
    with pytest.raises(ValueError, match="boom"):
        emitter.emit("error", ValueError("boom"))
    with pytest.raises(UnhandledErrorEvent, match="unspecified"):
        emitter.emit("error", "not an exception")
    with pytest.raises(ValueError, match="boom"):
        await emitter.emit_async("error", ValueError("boom"))
    seen: list[Any] = []
    handle = emitter.on("error", seen.append)
    assert emitter.emit("error", ValueError("handled")) is True
    handle.off()
    emitter.on_any(lambda *args: seen.append(args))  # a catch-all handles it too
    assert emitter.emit("error", KeyError("any")) is True
    assert len(seen) == 2


def test_ignore_errors_turns_the_error_event_into_a_plain_one() -> None:
    emitter = EventEmitter(ignore_errors=True)
    assert emitter.emit("error", ValueError("boom")) is False


# -- max_listeners' class-wide default ----------------------------------------------------------


def test_the_class_wide_default_of_max_listeners_is_settable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert EventEmitter.default_max_listeners == 10
    explicit = EventEmitter(max_listeners=5)
    defaulted = EventEmitter()
    monkeypatch.setattr(EventEmitter, "default_max_listeners", 2)
    assert (defaulted.max_listeners, explicit.max_listeners) == (2, 5)
    with caplog.at_level(logging.WARNING, logger="app.events"):
        for _ in range(3):
            defaulted.on("busy", lambda: None)
            explicit.on("busy", lambda: None)
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    defaulted.max_listeners = 0
    assert defaulted.max_listeners == 0


# -- call_soon and promisify --------------------------------------------------------------------


async def test_a_call_soon_listener_runs_after_the_emit_returns() -> None:
    emitter = EventEmitter()
    order: list[Any] = []
    emitter.on("e", lambda n: order.append(("later", n, current_event())), call_soon=True)
    emitter.on("e", lambda n: order.append(("now", n)))
    assert emitter.emit("e", 1) is True
    assert order == [("now", 1)]
    await emitter.drain()
    assert order == [("now", 1), ("later", 1, "e")]
    handle = emitter.on("sum", lambda a, b: a + b, call_soon=True)
    assert await emitter.emit_async("sum", 2, 3) == [5]
    assert emitter.listeners("sum") == [handle.listener]  # introspection shows the function


async def test_a_failing_call_soon_listener_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()

    def broken() -> None:
        raise RuntimeError("later kaput")

    emitter.on("e", broken, call_soon=True)
    with caplog.at_level(logging.ERROR, logger="app.events"):
        emitter.emit("e")
        await emitter.drain()
        with pytest.raises(ExceptionGroup):
            await emitter.emit_async("e", raise_errors=True)
    assert sum("later kaput" in r.getMessage() for r in caplog.records) == 2


async def test_a_promisified_listener_is_awaited_like_a_coroutine() -> None:
    emitter = EventEmitter()
    order: list[str] = []

    def plain() -> str:
        order.append("promisified")
        return "value"

    emitter.on("e", plain, promisify=True)
    emitter.on("e", lambda: order.append("inline"))
    assert emitter.emit("e") is True
    assert order == ["inline"]  # a coroutine: it starts as a task, after the emit
    await emitter.drain()
    assert order == ["inline", "promisified"]
    assert await emitter.emit_async("e") == ["value", None]

    def broken() -> None:
        raise RuntimeError("kaput")

    emitter.on("bad", broken, promisify=True)
    with pytest.raises(ExceptionGroup) as failures:
        await emitter.emit_async("bad", raise_errors=True)
    assert isinstance(failures.value.exceptions[0], RuntimeError)
