"""Errors a durable listener raises to steer its retries, and the relay's own failures."""

from __future__ import annotations

from datetime import datetime

from app.core.errors import TransientError


class Retry(TransientError):
    """An expected, passing failure (a source down or throttling): retry with the policy's
    backoff.

    The events' name for :class:`~app.core.errors.TransientError`, which the relay retries the
    same way whoever raises it (a source's own transient error subclasses it, so its listener
    need not translate it). Unlike any other exception, the relay logs it in one line, without a
    stack (the delivery's error history keeps it): it is the listener saying what happened, not
    a bug.

    Args:
        reason: what happened, kept in the delivery's error history.
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)


class RetryAfter(Retry):
    """Retry this delivery after ``seconds`` instead of the policy's backoff.

    Raise it when the far side says when to come back (HTTP 429 or 503 with ``Retry-After``).
    The attempt still counts toward ``max_attempts``. It is a ``TransientError`` whose
    ``retry_after`` is ``seconds``.

    Args:
        seconds: the delay before the next attempt.
        reason: what happened, kept in the delivery's error history.
    """

    def __init__(self, seconds: float, reason: str = "") -> None:
        if seconds < 0:
            raise ValueError("RetryAfter needs a delay of zero seconds or more")
        self.seconds = float(seconds)
        self.reason = reason
        super().__init__(reason or f"retry after {seconds:g} s")
        self.retry_after = self.seconds


class Defer(Exception):
    """Run this delivery again at ``until``: it is not due yet (a window that is still open).

    Not a failure: the attempt is not counted toward ``max_attempts``, nothing joins the error
    history, and the relay logs one INFO line. The listener's writes roll back as with any
    raise, so raise it before writing. A delivery with an ordering key goes on holding back the
    later deliveries of its key while it waits.

    Args:
        until: when the delivery is due again (timezone-aware; a moment already past makes it
            due at once).
        reason: why it waits, for the log.
    """

    def __init__(self, until: datetime, reason: str = "") -> None:
        if until.tzinfo is None:
            raise ValueError("Defer needs a timezone-aware time")
        self.until = until
        self.reason = reason
        super().__init__(reason or f"deferred until {until.isoformat()}")


class DoNotRetry(Exception):
    """Make this delivery a dead letter now: retrying cannot help (a 4xx, a missing record).

    Like :class:`Retry`, it is logged in one line, without a stack.

    Args:
        reason: why, kept in the delivery's error history.
    """


class PayloadInvalid(DoNotRetry):
    """A stored event can no longer be rebuilt: its name is unknown or its payload does not
    validate against the current contract."""


class LeaseLost(RuntimeError):
    """The delivery's lease passed to another relay; this attempt's writes are rolled back."""
