"""The module's clock: summary windows and quiet hours read it, and tests move it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from app.core.db import utcnow

Clock = Callable[[], datetime]

_clock: Clock = utcnow


def now() -> datetime:
    """Return the current time (timezone-aware, UTC) on the module's clock."""
    return _clock()


@contextmanager
def use_clock(clock: Clock) -> Iterator[None]:
    """Read ``clock`` instead of the wall clock inside the block (tests and benchmarks)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield
    finally:
        _clock = previous
