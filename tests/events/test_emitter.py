"""The raw EventEmitter: EventEmitter2's API, isolation, order and tracked tasks."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from app.events import EventEmitter, current_event


def test_on_and_emit_pass_arguments_and_report_whether_anyone_listened() -> None:
    emitter = EventEmitter()
    seen: list[tuple[Any, ...]] = []
    emitter.on("order.created", lambda *args: seen.append(args))
    assert emitter.emit("order.created", 1, "two") is True
    assert emitter.emit("order.deleted", 3) is False
    assert seen == [(1, "two")]


def test_on_works_as_a_decorator_and_returns_the_function() -> None:
    emitter = EventEmitter()
    seen: list[int] = []

    @emitter.on("tick")
    def handler(value: int) -> None:
        seen.append(value)

    emitter.emit("tick", 5)
    handler(6)
    assert seen == [5, 6]


def test_handle_off_unsubscribes_once() -> None:
    emitter = EventEmitter()
    seen: list[str] = []
    handle = emitter.on("a", lambda: seen.append("a"))
    assert handle.off() is True
    assert handle.off() is False
    assert emitter.emit("a") is False
    assert seen == []


def test_off_removes_the_most_recent_subscription_of_that_listener() -> None:
    emitter = EventEmitter()
    calls: list[str] = []

    def listener() -> None:
        calls.append("x")

    emitter.on("a", listener)
    emitter.on("a", listener)
    assert emitter.off("a", listener) is True
    emitter.emit("a")
    assert calls == ["x"]
    assert emitter.off("b", listener) is False


def test_once_and_many_count_calls() -> None:
    emitter = EventEmitter()
    once: list[int] = []
    many: list[int] = []
    emitter.once("e", once.append)
    emitter.many("e", 3, many.append)
    for i in range(5):
        emitter.emit("e", i)
    assert once == [0]
    assert many == [0, 1, 2]
    assert emitter.has_listeners("e") is False
    with pytest.raises(ValueError, match="n >= 1"):
        emitter.many("e", 0, many.append)


def test_prepend_and_priority_order() -> None:
    emitter = EventEmitter()
    order: list[str] = []
    emitter.on("e", lambda: order.append("first"))
    emitter.on("e", lambda: order.append("second"))
    emitter.prepend_listener("e", lambda: order.append("prepended"))
    emitter.on("e", lambda: order.append("high"), priority=10)
    emitter.on("e", lambda: order.append("low"), priority=-1)
    emitter.on("e", lambda: order.append("prepend-kw"), prepend=True)
    emitter.emit("e")
    assert order == ["high", "prepend-kw", "prepended", "first", "second", "low"]


def test_priority_orders_exact_and_wildcard_listeners_together() -> None:
    emitter = EventEmitter()
    order: list[str] = []
    emitter.on("user.*", lambda: order.append("pattern-low"), priority=-5)
    emitter.on("user.created", lambda: order.append("exact"))
    emitter.on("user.**", lambda: order.append("pattern-high"), priority=5)
    emitter.emit("user.created")
    assert order == ["pattern-high", "exact", "pattern-low"]


def test_on_any_receives_the_event_name_first_and_runs_first() -> None:
    emitter = EventEmitter()
    seen: list[tuple[Any, ...]] = []
    emitter.on("a.b", lambda x: seen.append(("listener", x)))
    any_handle = emitter.on_any(lambda name, x: seen.append(("any", name, x)))
    emitter.emit("a.b", 1)
    emitter.emit("other", 2)
    assert seen == [("any", "a.b", 1), ("listener", 1), ("any", "other", 2)]
    assert emitter.listeners_any() == [any_handle.listener]
    emitter.off_any(any_handle.listener)
    assert emitter.listeners_any() == []


def test_off_any_without_argument_removes_all_catch_alls() -> None:
    emitter = EventEmitter()
    emitter.on_any(lambda *_: None)
    emitter.on_any(lambda *_: None)
    emitter.off_any()
    assert emitter.listeners_any() == []
    assert emitter.has_listeners() is False


def test_remove_all_listeners_of_one_event_or_all() -> None:
    emitter = EventEmitter()
    emitter.on("a", lambda: None)
    emitter.on("a", lambda: None)
    emitter.on("b.*", lambda: None)
    emitter.on_any(lambda *_: None)
    emitter.remove_all_listeners("a")
    assert emitter.listener_count("a") == 0
    assert emitter.listener_count("b.c") == 1
    emitter.remove_all_listeners()
    assert emitter.has_listeners() is False
    assert emitter.event_names() == []


def test_introspection() -> None:
    emitter = EventEmitter()

    def a() -> None: ...

    def b() -> None: ...

    emitter.on("user.created", a)
    emitter.on("user.*", b)
    assert emitter.listeners("user.created") == [a, b]
    assert emitter.listeners("user.deleted") == [b]
    assert emitter.listener_count("user.created") == 2
    assert sorted(emitter.event_names()) == ["user.*", "user.created"]
    assert emitter.has_listeners("user.created") is True
    assert emitter.has_listeners("order.created") is False
    assert emitter.has_listeners() is True


def test_emitting_a_wildcard_name_is_an_error() -> None:
    emitter = EventEmitter()
    with pytest.raises(ValueError, match="wildcard"):
        emitter.emit("user.*")
    with pytest.raises(TypeError):
        emitter.emit("")


def test_without_wildcards_stars_are_literal() -> None:
    emitter = EventEmitter(wildcard=False)
    seen: list[str] = []
    emitter.on("user.*", lambda: seen.append("literal"))
    assert emitter.emit("user.created") is False
    assert emitter.emit("user.*") is True
    assert seen == ["literal"]


def test_custom_delimiter() -> None:
    emitter = EventEmitter(delimiter=":")
    seen: list[str] = []
    emitter.on("user:*", lambda: seen.append(current_event() or ""))
    emitter.emit("user:created")
    emitter.emit("user.created")
    assert seen == ["user:created"]


def test_a_listener_can_read_the_concrete_event_name() -> None:
    emitter = EventEmitter()
    names: list[str | None] = []
    emitter.on("order.**", lambda: names.append(current_event()))
    emitter.emit("order.line.added")
    emitter.emit("order")
    assert names == ["order.line.added", "order"]
    assert current_event() is None


def test_a_raising_listener_is_isolated_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    def broken() -> None:
        raise RuntimeError("kaput")

    emitter.on("e", lambda: seen.append("before"))
    emitter.on("e", broken)
    emitter.on("e", lambda: seen.append("after"))
    with caplog.at_level(logging.ERROR, logger="app.events"):
        assert emitter.emit("e") is True
    assert seen == ["before", "after"]
    failures = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(failures) == 1
    record = failures[0]
    assert record.exc_info is not None
    assert record.event == "e"  # type: ignore[attr-defined]
    assert record.listener.endswith("broken")  # type: ignore[attr-defined]


def test_more_than_max_listeners_warns_once_naming_the_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter(max_listeners=2)
    with caplog.at_level(logging.WARNING, logger="app.events"):
        for _ in range(5):
            emitter.on("busy.event", lambda: None)
        emitter.on("quiet", lambda: None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "busy.event" in warnings[0]


def test_zero_max_listeners_means_no_limit(caplog: pytest.LogCaptureFixture) -> None:
    emitter = EventEmitter(max_listeners=0)
    with caplog.at_level(logging.WARNING, logger="app.events"):
        for _ in range(100):
            emitter.on("e", lambda: None)
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_off_during_emit_takes_effect_at_once() -> None:
    emitter = EventEmitter()
    seen: list[str] = []
    second = None

    def first() -> None:
        seen.append("first")
        assert second is not None
        second.off()

    emitter.on("e", first)
    second = emitter.on("e", lambda: seen.append("second"))
    emitter.emit("e")
    emitter.emit("e")
    assert seen == ["first", "first"]


def test_listener_added_during_emit_runs_from_the_next_emit() -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    def adder() -> None:
        seen.append("adder")
        emitter.on("e", lambda: seen.append("added"))

    emitter.once("e", adder)
    emitter.emit("e")
    assert seen == ["adder"]
    emitter.emit("e")
    assert seen == ["adder", "added"]


def test_reentrant_emit_does_not_run_a_once_listener_twice() -> None:
    emitter = EventEmitter()
    seen: list[str] = []

    def reenter() -> None:
        seen.append("outer")
        if len(seen) < 2:
            emitter.emit("e")

    emitter.on("e", reenter)
    emitter.once("e", lambda: seen.append("once"))
    emitter.emit("e")
    assert seen.count("once") == 1
    assert seen == ["outer", "outer", "once"]


def test_reentrant_emit_of_another_event_sees_its_own_name() -> None:
    emitter = EventEmitter()
    names: list[str | None] = []

    def outer() -> None:
        emitter.emit("inner")
        names.append(current_event())

    emitter.on("outer", outer)
    emitter.on("inner", lambda: names.append(current_event()))
    emitter.emit("outer")
    assert names == ["inner", "outer"]


def test_subscribing_rejects_non_callables_and_empty_names() -> None:
    emitter = EventEmitter()
    with pytest.raises(TypeError, match="callable"):
        emitter.on("e", "not callable")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="non-empty"):
        emitter.on("", lambda: None)


async def test_emit_schedules_async_listeners_as_tracked_tasks() -> None:
    emitter = EventEmitter()
    done: list[int] = []

    async def slow(value: int) -> None:
        await asyncio.sleep(0.01)
        done.append(value)

    emitter.on("e", slow)
    assert emitter.emit("e", 7) is True
    assert done == []
    assert await emitter.drain(timeout=5) is True
    assert done == [7]


async def test_async_listener_errors_in_emit_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter()

    async def broken() -> None:
        raise ValueError("async kaput")

    emitter.on("e", broken)
    with caplog.at_level(logging.ERROR, logger="app.events"):
        emitter.emit("e")
        await emitter.drain()
    assert any("async kaput" in r.getMessage() for r in caplog.records)


def test_async_listener_without_a_loop_is_reported_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emitter = EventEmitter()

    async def needs_loop() -> None: ...

    emitter.on("e", needs_loop)
    with caplog.at_level(logging.ERROR, logger="app.events"):
        assert emitter.emit("e") is True
    assert any("running event loop" in r.getMessage() for r in caplog.records)


async def test_emit_async_gathers_results_in_listener_order() -> None:
    emitter = EventEmitter()

    async def slow() -> str:
        await asyncio.sleep(0.02)
        return "slow"

    async def fast() -> str:
        return "fast"

    emitter.on("e", slow)
    emitter.on("e", lambda: "sync")
    emitter.on("e", fast)
    assert await emitter.emit_async("e") == ["slow", "sync", "fast"]
    assert await emitter.emit_async("nobody") == []


async def test_emit_async_runs_async_listeners_concurrently() -> None:
    emitter = EventEmitter()
    running = 0
    peak = 0

    async def listener() -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    for _ in range(3):
        emitter.on("e", listener)
    await emitter.emit_async("e")
    assert peak == 3


async def test_sequential_awaits_one_by_one_in_priority_order() -> None:
    emitter = EventEmitter()
    log: list[str] = []

    def make(name: str, delay: float) -> Any:
        async def listener() -> str:
            log.append(f"start {name}")
            await asyncio.sleep(delay)
            log.append(f"end {name}")
            return name

        return listener

    emitter.on("e", make("low", 0), priority=1)
    emitter.on("e", make("high", 0.02), priority=5)
    results = await emitter.emit_async("e", sequential=True)
    assert results == ["high", "low"]
    assert log == ["start high", "end high", "start low", "end low"]


async def test_emit_async_isolates_errors_by_default() -> None:
    emitter = EventEmitter()

    async def broken() -> None:
        raise RuntimeError("boom")

    emitter.on("e", broken)
    emitter.on("e", lambda: "ok")
    assert await emitter.emit_async("e") == [None, "ok"]


async def test_raise_errors_raises_a_group_after_every_listener_ran() -> None:
    emitter = EventEmitter()
    ran: list[str] = []

    async def broken_async() -> None:
        ran.append("async")
        raise RuntimeError("async boom")

    def broken_sync() -> None:
        ran.append("sync")
        raise ValueError("sync boom")

    emitter.on("e", broken_sync)
    emitter.on("e", broken_async)
    emitter.on("e", lambda: ran.append("ok"))
    with pytest.raises(ExceptionGroup) as caught:
        await emitter.emit_async("e", raise_errors=True)
    assert sorted(ran) == ["async", "ok", "sync"]
    assert {type(e) for e in caught.value.exceptions} == {RuntimeError, ValueError}


async def test_raise_errors_in_sequential_mode_still_runs_everyone() -> None:
    emitter = EventEmitter()
    ran: list[str] = []

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("x")

    async def fine() -> None:
        ran.append("fine")

    emitter.on("e", broken, priority=1)
    emitter.on("e", fine)
    with pytest.raises(ExceptionGroup):
        await emitter.emit_async("e", sequential=True, raise_errors=True)
    assert ran == ["broken", "fine"]


async def test_wait_for_resolves_with_the_payload() -> None:
    emitter = EventEmitter()
    waiter = asyncio.create_task(emitter.wait_for("ready"))
    await asyncio.sleep(0)
    emitter.emit("ready", {"ok": True})
    assert await waiter == {"ok": True}
    assert emitter.has_listeners("ready") is False


async def test_wait_for_with_several_arguments_resolves_to_a_tuple() -> None:
    emitter = EventEmitter()
    waiter = asyncio.create_task(emitter.wait_for("pair"))
    await asyncio.sleep(0)
    emitter.emit("pair", 1, 2)
    assert await waiter == (1, 2)


async def test_wait_for_predicate_filters() -> None:
    emitter = EventEmitter()
    waiter = asyncio.create_task(emitter.wait_for("n", predicate=lambda n: n > 2))
    await asyncio.sleep(0)
    for n in range(5):
        emitter.emit("n", n)
    assert await waiter == 3


async def test_wait_for_times_out_and_unsubscribes() -> None:
    emitter = EventEmitter()
    with pytest.raises(TimeoutError):
        await emitter.wait_for("never", timeout=0.01)
    assert emitter.has_listeners("never") is False


async def test_wait_for_can_be_cancelled_and_unsubscribes() -> None:
    emitter = EventEmitter()
    waiter = asyncio.create_task(emitter.wait_for("never"))
    await asyncio.sleep(0)
    assert emitter.has_listeners("never") is True
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert emitter.has_listeners("never") is False


async def test_drain_times_out_and_close_cancels_stragglers() -> None:
    emitter = EventEmitter()
    cancelled = asyncio.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    emitter.on("e", forever)
    emitter.emit("e")
    assert await emitter.drain(timeout=0.01) is False
    await emitter.close(timeout=0.01)
    assert cancelled.is_set()
    assert emitter.has_listeners() is False


async def test_drain_waits_for_tasks_started_by_tasks() -> None:
    emitter = EventEmitter()
    done: list[str] = []

    async def first() -> None:
        await asyncio.sleep(0)
        emitter.emit("second")

    async def second() -> None:
        await asyncio.sleep(0.01)
        done.append("second")

    emitter.on("first", first)
    emitter.on("second", second)
    emitter.emit("first")
    assert await emitter.drain(timeout=5)
    assert done == ["second"]


def test_introspecting_a_pattern_lists_its_own_subscriptions() -> None:
    emitter = EventEmitter()

    def a() -> None: ...

    emitter.on("user.*", a)
    emitter.on("user.created", lambda: None)
    assert emitter.listeners("user.*") == [a]
    assert emitter.listener_count("user.*") == 1
    assert emitter.has_listeners("user.*") is True
    assert emitter.has_listeners("order.*") is False
