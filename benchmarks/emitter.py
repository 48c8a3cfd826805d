"""Emitter benchmark: per-emit times and ratios against peers and bounds, in one process.

Run with ``make bench`` or ``.venv/bin/python benchmarks/emitter.py``. Each figure is the median of
several rounds in which the compared cases take turns, so a busy shared machine moves them
alike; read the ratios.

Targets (issue 3): raw emit <= pyee and <= blinker; 50 extra non-matching wildcard patterns
<= 1.5x the exact-only emit; emit_async to three async listeners <= 1.3x a hand-written
asyncio.gather of the same coroutines. The typed row shows what the envelope costs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
# The project first, and not this folder, which a script run puts first: its http.py would
# hide the standard library's http.
sys.path[:] = [str(ROOT), *(p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks")]

import blinker  # noqa: E402
import pyee  # noqa: E402

from app.events import AppEmitter, Event, EventEmitter  # noqa: E402

ROUNDS = 9


def interleaved(cases: dict[str, Callable[[], Any]], number: int) -> dict[str, float]:
    """Time each case ``number`` times per round, rotating cases within every round.

    Interleaving keeps slow drift of a shared machine (frequency, neighbours) out of the ratios.
    Returns the median seconds per call of each case.
    """
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm-up
        for _ in range(number // 10):
            fn()
    for _ in range(ROUNDS):
        for name, fn in cases.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


def interleaved_async(cases: dict[str, Callable[[], Any]], number: int) -> dict[str, float]:
    """Like :func:`interleaved` for coroutine factories, all timed inside one event loop."""

    async def run() -> dict[str, float]:
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for make in cases.values():
            for _ in range(number // 10):
                await make()
        for _ in range(ROUNDS):
            for name, make in cases.items():
                start = time.perf_counter()
                for _ in range(number):
                    await make()
                samples[name].append((time.perf_counter() - start) / number)
        return {name: statistics.median(values) for name, values in samples.items()}

    return asyncio.run(run())


def noop(value: Any) -> None:
    return None


def noop_blinker(sender: Any, value: Any = None) -> None:
    return None


async def anoop(value: Any) -> None:
    return None


class Pinged(Event):
    name: ClassVar[str] = "bench.pinged"
    value: int


def sync_rows(number: int) -> list[tuple[str, float, str, str]]:
    ours = EventEmitter()
    for _ in range(3):
        ours.on("user.created", noop)
    theirs = pyee.EventEmitter()
    for _ in range(3):
        theirs.on("user.created", noop)
    signal = blinker.Signal()
    receivers = [lambda sender, value=None: None for _ in range(3)]  # distinct: blinker dedupes
    for receiver in receivers:
        signal.connect(receiver)

    wild = EventEmitter(max_listeners=0)
    for _ in range(3):
        wild.on("user.created", noop)
    for i in range(50):
        wild.on(f"other{i}.*.thing" if i % 2 else f"other{i}.**", noop)

    t = interleaved(
        {
            "ours": lambda: ours.emit("user.created", 1),
            "pyee": lambda: theirs.emit("user.created", 1),
            "blinker": lambda: signal.send(None, value=1),
            "wild": lambda: wild.emit("user.created", 1),
        },
        number,
    )
    t_ours, t_pyee, t_blinker, t_wild = t["ours"], t["pyee"], t["blinker"], t["wild"]
    return [
        ("raw emit, 3 sync listeners", t_ours, "1.00 (baseline)", ""),
        ("pyee emit, same work", t_pyee, f"ours/pyee = {t_ours / t_pyee:.2f}", "<= 1.00"),
        (
            "blinker send, same work",
            t_blinker,
            f"ours/blinker = {t_ours / t_blinker:.2f}",
            "<= 1.00",
        ),
        (
            "raw emit + 50 wildcard patterns",
            t_wild,
            f"wild/exact = {t_wild / t_ours:.2f}",
            "<= 1.50",
        ),
    ]


def async_rows(number: int) -> list[tuple[str, float, str, str]]:
    ours = EventEmitter()
    for _ in range(3):
        ours.on("user.created", anoop)

    async def gather() -> None:
        await asyncio.gather(anoop(1), anoop(1), anoop(1))

    t = interleaved_async(
        {"gather": gather, "ours": lambda: ours.emit_async("user.created", 1)}, number
    )
    t_gather, t_ours = t["gather"], t["ours"]
    return [
        ("asyncio.gather of 3 coroutines", t_gather, "1.00 (bound)", ""),
        (
            "emit_async, 3 async listeners",
            t_ours,
            f"ours/gather = {t_ours / t_gather:.2f}",
            "<= 1.30",
        ),
    ]


def typed_rows(number: int) -> list[tuple[str, float, str, str]]:
    raw = EventEmitter()
    typed = AppEmitter(max_listeners=0)
    typed.mark_ready()
    for _ in range(3):
        raw.on("bench.pinged", noop)
        typed.on(Pinged, noop)
    event = Pinged(organization_id=uuid.uuid4(), value=1)
    t = interleaved(
        {"raw": lambda: raw.emit("bench.pinged", event), "typed": lambda: typed.emit(event)}, number
    )
    t_raw, t_typed = t["raw"], t["typed"]
    return [
        ("raw emit of a payload", t_raw, "1.00 (baseline)", ""),
        ("typed emit with envelope", t_typed, f"typed/raw = {t_typed / t_raw:.2f}", "(cost shown)"),
    ]


def main() -> None:
    number = 20_000
    rows = [*sync_rows(number), *async_rows(number // 4), *typed_rows(number)]
    print(f"{'case':<36} {'per emit':>10}  {'ratio':<24} target")
    print("-" * 84)
    for name, seconds, ratio, target in rows:
        print(f"{name:<36} {seconds * 1e6:>8.2f}us  {ratio:<24} {target}")


if __name__ == "__main__":
    main()
