"""What changes while a sandbox runs: decisions, received actions, subscriptions, sent pushes,
faults, counters."""

from __future__ import annotations

import itertools
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from app.core.settings import SandboxSettings
from app.sandbox.data import DataSet

Clock = Callable[[], float]
SYSTEMS = ("oracle", "yardi", "fcm")
ACTION_SOURCES = ("oracle", "yardi")
MAX_RECORDED_ACTIONS = 10_000


@dataclass
class Fault:
    """An answer forced on the next ``times`` requests to one system."""

    status: int
    retry_after: int | None = None
    times: int = 1
    delay_seconds: float = 0.0
    token: str | None = None
    """FCM only: the fault answers the messages sent to this device token, and no other
    request (a partial failure of a multicast)."""


@dataclass
class FaultRates:
    """The share of one system's requests that fail at random, and how."""

    error_rate: float = 0.0
    """Answered 503 (Oracle, FCM) or with a SOAP server fault (Yardi)."""
    timeout_rate: float = 0.0
    """Held for ``timeout_seconds``, then answered 504 (the client times out first)."""
    rate_limit_rate: float = 0.0
    """Answered 429 with ``Retry-After: retry_after``."""
    retry_after: int = 1
    timeout_seconds: float = 30.0


@dataclass
class RetryAfterLedger:
    """When each call told to come back later (429 + ``Retry-After``) came back.

    A call is named by its ``X-Request-ID``, which the client keeps across the retries of one
    call. A retry that arrives before its ``Retry-After`` has passed is recorded as early.
    """

    limited: int = 0
    """Answers with a ``Retry-After``."""
    honoured: int = 0
    """Retries that came after their ``Retry-After``."""
    early: list[dict[str, Any]] = field(default_factory=list)
    """Retries that came too soon (at most 1,000 kept): system, request id, seconds early."""
    due: dict[str, float] = field(default_factory=dict)
    """request id -> the earliest time (``time.monotonic``) it may come back."""

    def arrived(self, system: str, request_id: str, now: float) -> None:
        not_before = self.due.pop(request_id, None)
        if not_before is None:
            return
        if now < not_before:
            if len(self.early) < 1000:
                self.early.append(
                    {"system": system, "request_id": request_id, "early_by": not_before - now}
                )
        else:
            self.honoured += 1

    def told_to_wait(self, request_id: str | None, seconds: int, now: float) -> None:
        self.limited += 1
        if request_id:
            self.due[request_id] = now + seconds


@dataclass
class Decision:
    outcome: str
    """APPROVE or REJECT (Oracle); Approve or Reject (Yardi)."""
    comment: str | None
    actor: str
    at: float


@dataclass(frozen=True)
class ReceivedAction:
    """A task action a client sent to the sandbox, whatever the sandbox answered."""

    id: int
    source: str
    """``oracle`` or ``yardi``."""
    task: str
    """The BPM task number, or the Yardi record id, as the client sent it."""
    user: str
    """Who acted: the authenticated Oracle user, or Yardi's ``ApproverUserName``."""
    action: str | None
    comment: str | None
    at: float
    outcome: str
    """``succeeded``, or why not: ``already_decided``, ``expired``, ``not_found``,
    ``action_not_allowed``, ``bad_request``."""
    status: int
    """The HTTP status the sandbox answered (Yardi answers its refusals with 200)."""
    task_id: str | None = None
    """The BPM ``taskId`` of a known task."""
    workflow_name: str | None = None
    """Yardi's ``WorkflowName``."""

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "task": self.task,
            "task_id": self.task_id,
            "workflow_name": self.workflow_name,
            "user": self.user,
            "action": self.action,
            "comment": self.comment,
            "at": datetime.fromtimestamp(self.at, UTC).isoformat().replace("+00:00", "Z"),
            "outcome": self.outcome,
            "status": self.status,
        }


class TaskNotPending(Exception):
    """A task decided elsewhere must be pending: it is unknown, decided already or expired."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        """``not_found``, ``already_decided`` or ``expired``."""


@dataclass
class Traffic:
    """Requests one system has seen, the most it had in flight at once, and how many callers
    went away before their request's body arrived."""

    requests: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0
    disconnected: int = 0


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
        self.rates: dict[str, FaultRates | None] = dict.fromkeys(SYSTEMS)
        """A system's random faults when set over HTTP, else those of the settings."""
        self.retry_after = RetryAfterLedger()
        self.traffic: dict[str, Traffic] = {name: Traffic() for name in SYSTEMS}
        self.actions: dict[str, deque[ReceivedAction]] = {
            name: deque(maxlen=MAX_RECORDED_ACTIONS) for name in ACTION_SOURCES
        }
        self._action_ids = itertools.count(1)

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

    def record_action(
        self,
        source: str,
        *,
        task: str,
        user: str,
        action: str | None,
        comment: str | None,
        outcome: str,
        status: int = 200,
        task_id: str | None = None,
        workflow_name: str | None = None,
    ) -> ReceivedAction:
        """Keep a task action a client sent (the newest ``MAX_RECORDED_ACTIONS`` per source)."""
        received = ReceivedAction(
            id=next(self._action_ids),
            source=source,
            task=task,
            user=user,
            action=action,
            comment=comment,
            at=self.clock(),
            outcome=outcome,
            status=status,
            task_id=task_id,
            workflow_name=workflow_name,
        )
        self.actions[source].append(received)
        return received

    def received_actions(
        self, source: str, *, task: str | None = None, user: str | None = None
    ) -> list[ReceivedAction]:
        """The actions ``source`` received, newest first; of one task or user (case-insensitive)."""
        wanted_user = user.casefold() if user else None
        return [
            a
            for a in reversed(self.actions[source])
            if (task is None or a.task == task)
            and (wanted_user is None or a.user.casefold() == wanted_user)
        ]

    def decide_task(
        self, number: int, action: str, *, actor: str = "sandbox", comment: str | None = None
    ) -> Decision:
        """Approve or reject a pending BPM task at the source, as if someone did it elsewhere.

        It is not a received action; the next listing no longer shows the task.

        Raises:
            ValueError: the action is not APPROVE or REJECT.
            TaskNotPending: the task does not exist, is decided already, or has expired.
        """
        outcome = action.strip().upper()
        if outcome not in ("APPROVE", "REJECT"):
            raise ValueError(f"a task is decided with APPROVE or REJECT, not {action!r}")
        generations = self.generations()
        task = self.data.task(number, generations)
        if task is None:
            raise TaskNotPending("not_found", f"no task {number}")
        if number in self.task_decisions:
            raise TaskNotPending("already_decided", f"task {number} is already decided")
        if self.is_expired(task.generation, generations):
            raise TaskNotPending("expired", f"task {number} has expired")
        decision = Decision(outcome=outcome, comment=comment, actor=actor, at=self.clock())
        self.task_decisions[number] = decision
        return decision

    def decide_lease(
        self, record_id: int, action: str, *, actor: str = "sandbox", comment: str | None = None
    ) -> Decision:
        """Approve or reject a pending Yardi leasing approval, as if someone did it elsewhere.

        Raises:
            ValueError: the action is not Approve or Reject.
            TaskNotPending: the approval does not exist, is decided already, or has expired.
        """
        outcome = action.strip().capitalize()
        if outcome not in ("Approve", "Reject"):
            raise ValueError(f"an approval is decided with Approve or Reject, not {action!r}")
        generations = self.generations()
        lease = self.data.lease(record_id, generations)
        if lease is None:
            raise TaskNotPending("not_found", f"no record {record_id}")
        if record_id in self.lease_decisions:
            raise TaskNotPending("already_decided", f"record {record_id} is already decided")
        if self.is_expired(lease.generation, generations):
            raise TaskNotPending("expired", f"record {record_id} has expired")
        decision = Decision(outcome=outcome, comment=comment, actor=actor, at=self.clock())
        self.lease_decisions[record_id] = decision
        return decision

    def rates_of(self, system: str) -> FaultRates:
        """The random faults of ``system``: set over HTTP, else those of ``SANDBOX_*``."""
        rates = self.rates[system]
        if rates is not None:
            return rates
        s = self.settings
        return FaultRates(
            error_rate=s.error_rate,
            timeout_rate=s.timeout_rate,
            rate_limit_rate=s.rate_limit_rate,
            retry_after=s.retry_after_seconds,
            timeout_seconds=s.timeout_seconds,
        )

    def inject(self, system: str, fault: Fault) -> None:
        """Force ``fault`` on the next requests to ``system`` (oracle, yardi or fcm)."""
        self.faults[system].append(fault)

    def next_fault(self, system: str) -> Fault | None:
        """Return the fault the next request gets: a forced one, else a random one."""
        queue = self.faults[system]
        fault = next((f for f in queue if f.token is None), None)
        if fault is not None:
            return self._spend(queue, fault)
        s = self.rates_of(system)
        roll = self.random.random()
        if roll < s.timeout_rate:
            return Fault(504, delay_seconds=s.timeout_seconds)
        roll -= s.timeout_rate
        if roll < s.rate_limit_rate:
            return Fault(429, retry_after=s.retry_after)
        roll -= s.rate_limit_rate
        if roll < s.error_rate:
            return Fault(503)
        return None

    def token_fault(self, token: str) -> Fault | None:
        """Return the fault forced on the next message to the FCM device ``token``, if any."""
        queue = self.faults["fcm"]
        fault = next((f for f in queue if f.token == token), None)
        return self._spend(queue, fault) if fault is not None else None

    @staticmethod
    def _spend(queue: deque[Fault], fault: Fault) -> Fault:
        fault.times -= 1
        if fault.times <= 0:
            queue.remove(fault)
        return fault

    def latency(self) -> float:
        """Seconds to wait before answering: the fixed latency plus jitter."""
        s = self.settings
        jitter = self.random.uniform(0, s.latency_jitter_ms) if s.latency_jitter_ms else 0.0
        return (s.latency_ms + jitter) / 1000
