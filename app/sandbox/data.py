"""The sandbox's deterministic data set: people, manager chains, tasks, requisitions, leases.

Nothing is stored up front. Every value is a pure function of the seed, the user count and an
index, so a data set of 10,000 people costs nothing until it is read, and the same seed gives the
same data in every process. The first five people are the demo organisation's
(``app/modules/user`` seeds them with these person numbers and usernames).

Ids encode where they come from, so any id leads back to its person or task in O(1):

- person ``i``: person number ``100001 + i``, PersonId ``300100000000000 + i``, AssignmentId
  ``300100100000000 + i``;
- BPM task numbers ``100000 + 4 * (generation * users + i) + slot``: slots 0-1 are HR tasks,
  2-3 Purchasing tasks; generation 0 has all four, later generations one new task for about a
  third of the people;
- Yardi record ids ``5000000 + 2 * (generation * users + i) + slot``.

Which of them are still pending (generation 0 always, later ones for a lifetime) is the
sandbox state's to say: see :meth:`app.sandbox.state.SandboxState.pending_generations`.
"""

from __future__ import annotations

import random
import uuid
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

FANOUT = 5
"""Direct reports per manager: person ``i`` reports to ``(i - 1) // FANOUT``."""
FIRST_PERSON_NUMBER = 100001
PERSON_ID_BASE = 300100000000000
ASSIGNMENT_ID_BASE = 300100100000000
PERIOD_ID_BASE = 300100200000000
REQUISITION_ID_BASE = 300100400000000
TASK_BASE = 100000
TASK_SLOTS = 4
RECORD_BASE = 5000000
RECORD_SLOTS = 2
EPOCH = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
"""The data set's "now" at generation 0; dates are computed from it, so they are stable."""

DEMO_PEOPLE = (
    ("Alex", "Admin"),
    ("Emma", "Employee"),
    ("Olivia", "Brown"),
    ("Liam", "Smith"),
    ("Noah", "Garcia"),
)
FIRST_NAMES = (
    "Ava", "Ben", "Chloe", "Daniel", "Ella", "Felix", "Grace", "Henry", "Isla", "Jack",
    "Kara", "Leo", "Maya", "Nina", "Oscar", "Priya", "Quinn", "Ravi", "Sofia", "Tom",
    "Uma", "Victor", "Wen", "Xavier", "Yara", "Zoe",
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Baker", "Chen", "Diaz", "Evans", "Fischer", "Gupta", "Hughes", "Ito",
    "Jones", "Kowalski", "Lopez", "Martin", "Nguyen", "Okafor", "Patel", "Rossi", "Silva",
    "Taylor", "Usman", "Vargas", "Walker", "Young", "Zhang",
)  # fmt: skip
DEPARTMENTS = ("Finance", "Engineering", "Operations", "Sales", "Human Resources", "Legal")
JOBS = (
    ("ENG1003", "Software Engineer"),
    ("FIN2001", "Financial Analyst"),
    ("OPS3002", "Operations Specialist"),
    ("SAL4001", "Account Manager"),
    ("HRM5001", "HR Business Partner"),
    ("MGR9001", "Department Manager"),
)
HR_TASKS = (
    ("Absences", "AbsenceApproval", "Approval of Vacation Absence Request for {who}"),
    ("Change Manager", "ChangeManagerApproval", "Approval of Change Manager for {who}"),
    ("Promotion", "PromotionApproval", "Approval of Promotion for {who}"),
    ("Timecards", "TimecardApproval", "Approval of Time Card for {who}"),
)
ITEMS = (
    ("Laptop 14in", "Computer Equipment", Decimal("1249.00")),
    ("Office chair", "Furniture", Decimal("389.50")),
    ("Monitor 27in", "Computer Equipment", Decimal("299.99")),
    ("Conference travel", "Travel", Decimal("860.00")),
    ("Software licence", "Software", Decimal("120.00")),
)
LEASES = (
    ("Lease", "New Lease Approval"),
    ("LeaseRenewal", "Lease Renewal Approval"),
)
TENANTS = ("Acme Retail", "Blue Bottle Cafe", "Northwind Traders", "Globex Pharmacy", "Initech")
PROPERTIES = (
    "Harbor Point Plaza",
    "Elm Street Commons",
    "Riverside Center",
    "Maple Court",
    "Station Square",
    "Oak Park Offices",
    "Lakeview Terrace",
)
"""Property names by code: ``prop01`` is the first."""


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (``hash()`` of a string is not)."""
    return zlib.crc32(":".join(str(p) for p in parts).encode())


@dataclass(frozen=True)
class Person:
    index: int
    first_name: str
    last_name: str
    username: str
    email: str
    manager_index: int | None
    job_code: str
    job_name: str
    department: str

    @property
    def person_number(self) -> str:
        return str(FIRST_PERSON_NUMBER + self.index)

    @property
    def person_id(self) -> int:
        return PERSON_ID_BASE + self.index

    @property
    def assignment_id(self) -> int:
        return ASSIGNMENT_ID_BASE + self.index

    @property
    def period_of_service_id(self) -> int:
        return PERIOD_ID_BASE + self.index

    @property
    def assignment_number(self) -> str:
        return f"E{self.person_number}"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def hire_date(self) -> date:
        return date(2015, 1, 1) + timedelta(days=self.index % 3000)


@dataclass(frozen=True)
class TaskSeed:
    """A BPM task as generated (its state lives in the sandbox state)."""

    number: int
    generation: int
    approver: int
    slot: int
    requester: int

    @property
    def is_purchasing(self) -> bool:
        return self.slot >= 2

    @property
    def requisition_id(self) -> int:
        return REQUISITION_ID_BASE + self.number

    @property
    def created(self) -> datetime:
        return EPOCH - timedelta(hours=(self.number % 72) + 1)

    @property
    def due(self) -> datetime | None:
        """One to ten days after it was created; every fourth task has no deadline."""
        if self.number % 4 == 0:
            return None
        return self.created + timedelta(days=1 + self.number % 10)


@dataclass(frozen=True)
class LeaseSeed:
    record_id: int
    generation: int
    approver: int
    slot: int
    requester: int

    @property
    def property_index(self) -> int:
        return self.approver % len(PROPERTIES)

    @property
    def requested_on(self) -> date:
        return date(2026, 11, 1 + self.record_id % 20)

    @property
    def due_on(self) -> date | None:
        """A week or two after the request; every fifth approval has no deadline."""
        if self.record_id % 5 == 0:
            return None
        return self.requested_on + timedelta(days=7 + self.record_id % 8)

    @property
    def lease_start(self) -> date:
        """The first of a month in 2027, so that leases differ but stay stable."""
        return date(2027, 1 + self.record_id % 12, 1)

    @property
    def lease_end(self) -> date:
        """One to three years after the start, the day before."""
        start = self.lease_start
        return date(start.year + 1 + self.record_id % 3, start.month, 1) - timedelta(days=1)


class DataSet:
    """The people and tasks of one seed and user count."""

    def __init__(self, *, seed: int, users: int) -> None:
        if users < 1:
            raise ValueError("the sandbox needs at least one person")
        self.seed = seed
        self.users = users
        self.person = lru_cache(maxsize=65536)(self._person)
        self._demo_usernames = {
            f"{first}.{last}".upper(): i for i, (first, last) in enumerate(DEMO_PEOPLE) if i < users
        }

    # -- people -------------------------------------------------------------------------------

    def _person(self, index: int) -> Person:
        if index < len(DEMO_PEOPLE):
            first, last = DEMO_PEOPLE[index]
            username = f"{first}.{last}".upper()
            email = f"{first}.{last}@example.com".lower()
        else:
            rng = random.Random(f"{self.seed}:person:{index}")
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            number = FIRST_PERSON_NUMBER + index
            username = f"{first}.{last}.{number}".upper()
            email = f"{first}.{last}.{number}@example.com".lower()
        code, job = JOBS[-1] if self.has_reports(index) else JOBS[index % (len(JOBS) - 1)]
        return Person(
            index=index,
            first_name=first,
            last_name=last,
            username=username,
            email=email,
            manager_index=None if index == 0 else (index - 1) // FANOUT,
            job_code=code,
            job_name=job,
            department=DEPARTMENTS[stable_hash(self.seed, "dept", index) % len(DEPARTMENTS)],
        )

    def has_reports(self, index: int) -> bool:
        return index * FANOUT + 1 < self.users

    def reports(self, index: int) -> range:
        start = index * FANOUT + 1
        return range(min(start, self.users), min(start + FANOUT, self.users))

    def index_of_number(self, person_number: str) -> int | None:
        """Return the person with this person number, if any."""
        if not person_number.isdigit():
            return None
        index = int(person_number) - FIRST_PERSON_NUMBER
        return index if 0 <= index < self.users else None

    def index_of_id(self, value: int, base: int) -> int | None:
        index = value - base
        return index if 0 <= index < self.users else None

    def index_of_username(self, username: str) -> int | None:
        """Return the person with this Oracle username (case-insensitive), if any."""
        upper = username.strip().upper()
        if upper in self._demo_usernames:
            return self._demo_usernames[upper]
        number = upper.rsplit(".", 1)[-1]
        index = self.index_of_number(number)
        if index is None or index < len(DEMO_PEOPLE):
            return None
        return index if self.person(index).username == upper else None

    def index_of_login(self, login: str) -> int | None:
        """Return the person with this username or email, if any."""
        if "@" not in login:
            return self.index_of_username(login)
        local = login.split("@", 1)[0]
        index = self.index_of_username(local.replace("_", "."))
        return index if index is not None and self.person(index).email == login.lower() else None

    def requester_for(self, approver: int, salt: int) -> int:
        """A direct report of the approver when there is one, else another person."""
        reports = self.reports(approver)
        if len(reports):
            return reports[salt % len(reports)]
        return (approver + 1 + salt) % self.users if self.users > 1 else approver

    # -- BPM tasks ----------------------------------------------------------------------------

    def task_slots(self, generation: int, approver: int) -> tuple[int, ...]:
        if generation == 0:
            return tuple(range(TASK_SLOTS))
        if stable_hash(self.seed, "task", generation, approver) % 3 == 0:
            return (0 if generation % 2 else 2,)
        return ()

    def task_number(self, generation: int, approver: int, slot: int) -> int:
        return TASK_BASE + TASK_SLOTS * (generation * self.users + approver) + slot

    def task(self, number: int, generations: int) -> TaskSeed | None:
        """Return the task with this number if it exists within ``generations``."""
        offset = number - TASK_BASE
        if offset < 0:
            return None
        slot, rest = offset % TASK_SLOTS, offset // TASK_SLOTS
        generation, approver = divmod(rest, self.users)
        if generation > generations or slot not in self.task_slots(generation, approver):
            return None
        return TaskSeed(number, generation, approver, slot, self.requester_for(approver, number))

    def tasks_of(self, approver: int, generations: Iterable[int]) -> list[TaskSeed]:
        """Every task assigned to ``approver`` in ``generations`` (ascending), oldest first."""
        out = []
        for generation in generations:
            for slot in self.task_slots(generation, approver):
                number = self.task_number(generation, approver, slot)
                out.append(
                    TaskSeed(
                        number, generation, approver, slot, self.requester_for(approver, number)
                    )
                )
        return out

    def generation_task_numbers(self, generation: int) -> array[int]:
        """The numbers of every task of one generation, ascending."""
        return array(
            "q",
            (
                self.task_number(generation, approver, slot)
                for approver in range(self.users)
                for slot in self.task_slots(generation, approver)
            ),
        )

    @staticmethod
    def task_id(number: int) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-task:{number}"))

    def hr_kind(self, task: TaskSeed) -> tuple[str, str, str]:
        return HR_TASKS[task.number % len(HR_TASKS)]

    def requisition_lines(self, task: TaskSeed) -> list[tuple[str, str, Decimal, int]]:
        count = 1 + task.number % 3
        return [
            (*ITEMS[(task.number + n) % len(ITEMS)], 1 + (task.number + n) % 4)
            for n in range(count)
        ]

    # -- Yardi leasing approvals --------------------------------------------------------------

    def lease_slots(self, generation: int, approver: int) -> tuple[int, ...]:
        if generation == 0:
            return tuple(range(RECORD_SLOTS))
        if stable_hash(self.seed, "lease", generation, approver) % 4 == 1:
            return (generation % RECORD_SLOTS,)
        return ()

    def lease(self, record_id: int, generations: int) -> LeaseSeed | None:
        offset = record_id - RECORD_BASE
        if offset < 0:
            return None
        slot, rest = offset % RECORD_SLOTS, offset // RECORD_SLOTS
        generation, approver = divmod(rest, self.users)
        if generation > generations or slot not in self.lease_slots(generation, approver):
            return None
        return LeaseSeed(
            record_id, generation, approver, slot, self.requester_for(approver, record_id)
        )

    def leases_of(self, approver: int, generations: Iterable[int]) -> list[LeaseSeed]:
        """Every approval of ``approver`` in ``generations`` (ascending), oldest first."""
        out = []
        for generation in generations:
            for slot in self.lease_slots(generation, approver):
                record = RECORD_BASE + RECORD_SLOTS * (generation * self.users + approver) + slot
                out.append(
                    LeaseSeed(
                        record, generation, approver, slot, self.requester_for(approver, record)
                    )
                )
        return out
