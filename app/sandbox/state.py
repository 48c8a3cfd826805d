"""What changes while a sandbox runs: decisions, subscriptions, sent pushes, faults, counters."""

from __future__ import annotations

import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from app.core.settings import SandboxSettings
from app.sandbox.data import DataSet

Clock = Callable[[], float]
SYSTEMS = ("oracle", "yardi", "fcm")


@dataclass
class Fault:
    """An answer forced on the next ``times`` requests to one system."""

    status: int
    retry_after: int | None = None
    times: int = 1
    delay_seconds: float = 0.0


@dataclass
class Decision:
    outcome: str
    """APPROVE or REJECT (Oracle); Approve or Reject (Yardi)."""
    comment: str | None
    actor: str
    at: float


@dataclass
class Traffic:
    """Requests one system has seen, and the most it had in flight at once."""

    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0


@dataclass
class FcmState:
    sent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=10_000))
    counter: int = 0
    unregistered: set[str] = field(default_factory=set)
    topics: dict[str, dict[str, float]] = field(default_factory=dict)
    """token -> topic -> subscription time."""
    answer_delay_seconds: float = 0.0
    """How long an accepted message waits before its answer: the sender cannot tell whether it
    was delivered (a slow network, or a sender that dies meanwhile)."""


class SandboxState:
    """The mutable side of a sandbox; the data set itself never changes."""

    def __init__(
        self,
        settings: SandboxSettings,
        *,
        public_key: RSAPublicKey | None,
        clock: Clock = time.time,
    ) -> None:
        self.settings = settings
        self.data = DataSet(seed=settings.seed, users=settings.users)
        self.public_key = public_key
        self.clock = clock
        self.started_at = clock()
        self.random = random.Random(settings.seed)
        self.task_decisions: dict[int, Decision] = {}
        self.lease_decisions: dict[int, Decision] = {}
        self.fcm = FcmState()
        self.faults: dict[str, deque[Fault]] = {name: deque() for name in SYSTEMS}
        self.traffic: dict[str, Traffic] = {name: Traffic() for name in SYSTEMS}

    @property
    def password(self) -> str:
        return self.settings.password.get_secret_value()

    def generations(self) -> int:
        """How many times new tasks have appeared since the sandbox started."""
        interval = self.settings.new_task_interval_seconds
        if interval <= 0:
            return 0
        return max(0, int((self.clock() - self.started_at) // interval))

    def pending_generations(self, generations: int) -> list[int]:
        """The generations whose undecided tasks are pending: 0 and the last ``lifetime``.

        Generation 0 is the demo's base inbox and never expires; a later generation's tasks and
        approvals expire ``SANDBOX_TASK_LIFETIME_GENERATIONS`` generations after they appear,
        as real BPM tasks do, so the pending set stays bounded however long the sandbox runs.
        """
        lifetime = self.settings.task_lifetime_generations
        return [0, *range(max(1, generations - lifetime + 1), generations + 1)]

    def expired_generations(self, generations: int) -> range:
        """The generations whose undecided tasks have expired by ``generations``."""
        return range(1, max(1, generations - self.settings.task_lifetime_generations + 1))

    def is_expired(self, generation: int, generations: int) -> bool:
        """Whether an undecided task of ``generation`` has expired by ``generations``."""
        return 0 < generation <= generations - self.settings.task_lifetime_generations

    def expired_at(self, generation: int) -> float:
        """When an undecided task of ``generation`` (> 0) expires, on the sandbox's clock."""
        lifetime = self.settings.task_lifetime_generations
        return self.started_at + (generation + lifetime) * self.settings.new_task_interval_seconds

    def inject(self, system: str, fault: Fault) -> None:
        """Force ``fault`` on the next requests to ``system`` (oracle, yardi or fcm)."""
        self.faults[system].append(fault)

    def next_fault(self, system: str) -> Fault | None:
        """Return the fault the next request gets: a forced one, else a random one."""
        queue = self.faults[system]
        if queue:
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.popleft()
            return fault
        s = self.settings
        roll = self.random.random()
        if roll < s.timeout_rate:
            return Fault(504, delay_seconds=s.timeout_seconds)
        roll -= s.timeout_rate
        if roll < s.rate_limit_rate:
            return Fault(429, retry_after=s.retry_after_seconds)
        roll -= s.rate_limit_rate
        if roll < s.error_rate:
            return Fault(503)
        return None

    def latency(self) -> float:
        """Seconds to wait before answering: the fixed latency plus jitter."""
        s = self.settings
        jitter = self.random.uniform(0, s.latency_jitter_ms) if s.latency_jitter_ms else 0.0
        return (s.latency_ms + jitter) / 1000
