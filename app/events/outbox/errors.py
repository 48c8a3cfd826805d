"""Errors a durable listener raises to steer its retries, and the relay's own failures."""

from __future__ import annotations


class RetryAfter(Exception):
    """Retry this delivery after ``seconds`` instead of the policy's backoff.

    Raise it when the far side says when to come back (HTTP 429 or 503 with ``Retry-After``).
    The attempt still counts toward ``max_attempts``.

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


class DoNotRetry(Exception):
    """Make this delivery a dead letter now: retrying cannot help (a 4xx, a missing record).

    Args:
        reason: why, kept in the delivery's error history.
    """


class PayloadInvalid(DoNotRetry):
    """A stored event can no longer be rebuilt: its name is unknown or its payload does not
    validate against the current contract."""


class LeaseLost(RuntimeError):
    """The delivery's lease passed to another relay; this attempt's writes are rolled back."""
