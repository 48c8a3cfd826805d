"""Which BPM tasks a worklist listing shows, and one page of them without walking the rest.

Listings are in task-number order: generation, then approver, then slot. A person's own
listing is short (their tasks in the generations asked about). The worklist administrator's
``assignment=ALL`` listing covers everyone, so a page at ``offset`` is found by counting rather
than generating: a generation's tasks never change (generation 0's are arithmetic, a later one's
are generated once and cached), and the decided tasks are kept sorted, so the tasks before the
offset are skipped a whole generation at a time and located inside one by bisection. A sweep of
10,000 people then costs the same per page at its end as at its start, and a decision taken
between pages costs one insertion, not a rebuild.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from itertools import islice
from typing import Protocol

from app.sandbox.data import TASK_BASE, TASK_SLOTS, TaskSeed
from app.sandbox.state import SandboxState

ASSIGNED, COMPLETED, EXPIRED = "ASSIGNED", "COMPLETED", "EXPIRED"
CONTEXT_SLOTS: dict[str | None, tuple[int, ...]] = {
    None: tuple(range(TASK_SLOTS)),
    "hcm": (0, 1),
    "fscm": (2, 3),
}
"""The slots each ``applicationContext`` covers: HR tasks are ``hcm``, Purchasing ``fscm``."""


class Numbers(Protocol):
    """Ascending task numbers that can be counted and indexed without being materialised."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> int: ...


NOTHING: Numbers = range(0)


@dataclass(frozen=True)
class BaseInbox:
    """Generation 0's tasks in ``slots``: every approver has all four, so they are computed."""

    users: int
    slots: tuple[int, ...]

    def __len__(self) -> int:
        return self.users * len(self.slots)

    def __getitem__(self, index: int, /) -> int:
        if not 0 <= index < len(self):
            raise IndexError(index)
        approver, slot = divmod(index, len(self.slots))
        return TASK_BASE + TASK_SLOTS * approver + self.slots[slot]


def task_state(state: SandboxState, task: TaskSeed, generations: int) -> str:
    """Return ASSIGNED, COMPLETED once decided, or EXPIRED once past its lifetime undecided."""
    if task.number in state.task_decisions:
        return COMPLETED
    return EXPIRED if state.is_expired(task.generation, generations) else ASSIGNED


class Worklist:
    """The BPM worklist of one sandbox: its listings, paged cheaply for the administrator."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._generation = lru_cache(maxsize=state.settings.task_lifetime_generations + 1)(
            state.data.generation_task_numbers
        )
        self._decided: dict[str | None, list[int]] = {context: [] for context in CONTEXT_SLOTS}
        self._decided_seen = 0

    def generations_of(self, status: str, generations: int) -> Iterable[int]:
        """Return the generations whose tasks a listing of ``status`` may show, ascending."""
        if status == ASSIGNED:
            return self.state.pending_generations(generations)
        if status == EXPIRED:
            return self.state.expired_generations(generations)
        if status == COMPLETED:
            return range(generations + 1)
        return ()

    def of_person(
        self, person: int, *, generations: int, status: str, context: str | None
    ) -> list[TaskSeed]:
        """Return the tasks assigned to ``person`` with ``status`` (and ``context``), in order."""
        slots = CONTEXT_SLOTS.get(context, ())
        decided = self.state.task_decisions
        return [
            task
            for task in self.state.data.tasks_of(person, self.generations_of(status, generations))
            if task.slot in slots and (task.number in decided) == (status == COMPLETED)
        ]

    def admin_page(
        self, *, generations: int, status: str, context: str | None, offset: int, limit: int
    ) -> tuple[list[int], bool]:
        """Return a page of everyone's task numbers with ``status`` and whether more follow."""
        decided = self.decided(context)
        want = limit + 1 if limit > 0 else None
        if status == COMPLETED:
            found = decided[offset : None if want is None else offset + want]
        else:
            found = list(
                islice(self._undecided_from(decided, status, generations, context, offset), want)
            )
        if want is not None and len(found) == want:
            return found[:limit], True
        return found, False

    def decided(self, context: str | None) -> list[int]:
        """Return the decided task numbers of ``context`` (None: every context), ascending."""
        decisions = self.state.task_decisions
        if self._decided_seen != len(decisions):
            # Decisions are only ever added, and a dict keeps their order: fold in the new ones.
            for number in islice(decisions, self._decided_seen, None):
                slot = (number - TASK_BASE) % TASK_SLOTS
                for key, slots in CONTEXT_SLOTS.items():
                    if slot in slots:
                        insort(self._decided[key], number)
            self._decided_seen = len(decisions)
        return self._decided.get(context, [])

    def _numbers(self, generation: int, slots: tuple[int, ...], *, pending: bool) -> Numbers:
        if generation == 0:
            return BaseInbox(self.state.data.users, slots)
        # The cache holds the pending window; expired generations (an audit listing, unbounded
        # over uptime) are generated afresh rather than evicting it.
        numbers = (
            self._generation(generation)
            if pending
            else self.state.data.generation_task_numbers(generation)
        )
        if not numbers or (numbers[0] - TASK_BASE) % TASK_SLOTS not in slots:
            return NOTHING  # a later generation has one slot, so one context
        return numbers

    def _undecided_from(
        self,
        decided: list[int],
        status: str,
        generations: int,
        context: str | None,
        offset: int,
    ) -> Iterable[int]:
        slots = CONTEXT_SLOTS.get(context, ())
        skip = offset
        for generation in self.generations_of(status, generations):
            numbers = self._numbers(generation, slots, pending=status == ASSIGNED)
            if not len(numbers):
                continue
            # The decided tasks of this context between the generation's first and last number
            # are all in it: a later generation has one slot, and generation 0 every slot.
            low = bisect_left(decided, numbers[0])
            high = bisect_right(decided, numbers[len(numbers) - 1], low)
            undecided = len(numbers) - (high - low)
            if skip >= undecided:
                skip -= undecided
                continue
            start = _position(numbers, decided, low, high, skip) if skip else 0
            skip = 0
            for index in range(start, len(numbers)):
                number = numbers[index]
                if number not in self.state.task_decisions:
                    yield number


def _position(numbers: Numbers, decided: list[int], low: int, high: int, skip: int) -> int:
    """The index in ``numbers`` of the undecided task with ``skip`` undecided ones before it."""
    first, last = 0, len(numbers) - 1
    while first < last:
        middle = (first + last) // 2
        undecided_through = middle + 1 - (bisect_right(decided, numbers[middle], low, high) - low)
        if undecided_through > skip:
            last = middle
        else:
            first = middle + 1
    return first
