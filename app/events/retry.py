"""How a failed durable delivery is retried: the policy and its one decision.

The relay (a listener raised) and the lease rescue (a worker died) both ask
:meth:`RetryPolicy.decide`, so a delivery is retried, delayed and dead-lettered the same way
whatever made its attempt fail.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """What happens to a delivery after a failed attempt.

    Attributes:
        dead: it becomes a dead letter (attempts exhausted, or the listener gave up).
        delay: seconds until the next attempt (kept on a dead letter too: a retry by an
            operator resets it anyway).
    """

    dead: bool
    delay: float


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retries of a durable listener: exponential backoff with jitter, then a dead letter.

    Attributes:
        max_attempts: attempts before the delivery becomes a dead letter.
        base_delay: seconds before the first retry; doubled on each attempt.
        max_delay: the cap of one delay, in seconds.
        jitter: the fraction of each delay drawn at random: the delay after attempt ``n`` is
            uniform in ``[d * (1 - jitter), d]`` with ``d = min(max_delay, base_delay * 2**(n-1))``,
            so that retries of many deliveries spread out instead of arriving together.
    """

    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if (
            self.max_attempts < 1
            or self.base_delay < 0
            or self.max_delay < self.base_delay
            or not 0 <= self.jitter <= 1
        ):
            raise ValueError(f"invalid retry policy: {self}")

    def delay(self, attempt: int, rand: float) -> float:
        """Return the seconds to wait after failed attempt ``attempt`` (1-based).

        Args:
            attempt: the number of the attempt that failed, from 1.
            rand: a number in ``[0, 1)``, the jitter's draw (``random.random()``).

        Returns:
            The delay in seconds, at most ``max_delay``.
        """
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 seconds is past any cap
        ceiling = min(self.max_delay, self.base_delay * 2.0**exponent)
        return ceiling * (1 - self.jitter * rand)

    def decide(
        self, attempt: int, rand: float, *, give_up: bool = False, retry_after: float | None = None
    ) -> RetryDecision:
        """Decide whether failed attempt ``attempt`` is retried, and when.

        Args:
            attempt: the number of the attempt that failed, from 1.
            rand: a number in ``[0, 1)``, the jitter's draw.
            give_up: the listener said retrying cannot help (``DoNotRetry``).
            retry_after: the delay the listener asked for (the ``retry_after`` of the
                ``TransientError`` it raised, such as ``RetryAfter``), instead of the backoff.

        Returns:
            Dead letter or retry, and the delay before the next attempt.
        """
        dead = give_up or attempt >= self.max_attempts
        delay = self.delay(attempt, rand) if retry_after is None else retry_after
        return RetryDecision(dead=dead, delay=delay)
