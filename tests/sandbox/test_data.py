"""The deterministic data set: same seed, same people and tasks; ids lead back in O(1)."""

from __future__ import annotations

import time

import pytest

from app.sandbox.data import DEMO_PEOPLE, FANOUT, DataSet


def test_the_same_seed_gives_the_same_data_and_another_seed_other_people() -> None:
    a, b, c = DataSet(seed=42, users=200), DataSet(seed=42, users=200), DataSet(seed=7, users=200)
    assert [a.person(i) for i in range(200)] == [b.person(i) for i in range(200)]
    assert [a.person(i).username for i in range(5, 200)] != [
        c.person(i).username for i in range(5, 200)
    ]
    assert [a.person(i).username for i in range(5)] == [c.person(i).username for i in range(5)]
    assert [t.number for t in a.tasks_of(7, range(11))] == [
        t.number for t in b.tasks_of(7, range(11))
    ]


def test_the_demo_people_come_first() -> None:
    data = DataSet(seed=1, users=50)
    names = [(data.person(i).first_name, data.person(i).last_name) for i in range(5)]
    assert names == list(DEMO_PEOPLE)
    assert data.person(1).username == "EMMA.EMPLOYEE"
    assert data.person(1).email == "emma.employee@example.com"
    assert data.person(1).person_number == "100002"


def test_everyone_has_a_manager_chain_to_the_top() -> None:
    data = DataSet(seed=42, users=500)
    for index in (1, 17, 499):
        chain, current = [], index
        while (manager := data.person(current).manager_index) is not None:
            chain.append(manager)
            current = manager
        assert chain[-1] == 0
        assert len(chain) < 10
    assert data.person(0).manager_index is None
    assert list(data.reports(1)) == list(range(1 + FANOUT, 1 + 2 * FANOUT))


def test_ids_lead_back_to_their_person() -> None:
    data = DataSet(seed=42, users=300)
    person = data.person(123)
    assert data.index_of_number(person.person_number) == 123
    assert data.index_of_username(person.username.lower()) == 123
    assert data.index_of_login(person.email) == 123
    assert data.index_of_login(person.email.upper().replace("@EXAMPLE.COM", "@example.com")) == 123
    assert data.index_of_id(person.assignment_id, 300100100000000) == 123
    for bad in ("", "abc", "99", "100301", "EMMA.NOBODY", "X.Y.100124", "nobody@example.com"):
        assert data.index_of_login(bad) is None


def test_tasks_grow_over_generations_and_numbers_decode() -> None:
    data = DataSet(seed=42, users=100)
    assert len(data.tasks_of(3, [0])) == 4
    grown = sum(len(data.tasks_of(i, range(13))) for i in range(100)) - 4 * 100
    assert 300 < grown < 500  # about a third of the people per generation
    for task in data.tasks_of(42, range(13)):
        assert data.task(task.number, 12) == task
        assert data.task(task.number, task.generation - 1) is None or task.generation == 0
    assert data.task(99, 12) is None
    assert data.task(data.task_number(0, 3, 1) + 4 * 100 * 50, 12) is None  # a future generation
    assert len(data.leases_of(3, [0])) == 2


def test_ten_thousand_people_cost_nothing_until_read() -> None:
    started = time.perf_counter()
    data = DataSet(seed=42, users=10_000)
    last = data.person(9_999)
    assert data.index_of_username(last.username) == 9_999
    assert data.tasks_of(9_999, [0])[-1].number == data.task_number(0, 9_999, 3)
    assert time.perf_counter() - started < 0.2


def test_an_empty_data_set_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        DataSet(seed=1, users=0)
