"""Wildcards follow EventEmitter2's documented rule (not its 6.4.9 corner-case bugs)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.events import EventEmitter
from app.events.patterns import is_pattern, match_segments, matches


def reference_match(pattern: list[str], name: list[str]) -> bool:
    """A straightforward recursive matcher, written from the rule alone."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(reference_match(rest, name[i:]) for i in range(len(name) + 1))
    if not name:
        return False
    return (head == "*" or head == name[0]) and reference_match(rest, name[1:])


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("user.*", "user.created", True),
        ("user.*", "user", False),
        ("user.*", "user.a.b", False),
        ("user.**", "user", True),
        ("user.**", "user.a.b", True),
        ("**.created", "created", True),
        ("**.created", "user.created", True),
        ("a.**.b", "a.b", True),
        ("a.**.b", "a.x.y.b", True),
        ("a.**.b", "a.x.y", False),
        ("**.a", "c.a.c.a", True),
        ("**.**", "anything.at.all", True),
        ("**.**", "one", True),
        ("**", "x.y.z", True),
        ("*.*", "a.b", True),
        ("*.*", "a.b.c", False),
        ("a.*.c.**", "a.b.c", True),
        ("a.*.c.**", "a.c", False),
        ("audit.*.approval", "audit.hr.approval", True),
        ("audit.*.approval", "audit.approval", False),
    ],
)
def test_documented_examples(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected
    emitter = EventEmitter()
    fired: list[str] = []
    emitter.on(pattern, lambda: fired.append(name))
    emitter.emit(name)
    assert bool(fired) is expected


def test_a_pattern_that_matches_several_ways_runs_once() -> None:
    emitter = EventEmitter()
    fired: list[str] = []
    emitter.on("**.a.**", lambda: fired.append("x"))
    emitter.emit("a.a.a")
    assert fired == ["x"]


def test_overlapping_patterns_each_run_once() -> None:
    emitter = EventEmitter()
    fired: list[str] = []
    emitter.on("user.*", lambda: fired.append("star"))
    emitter.on("user.**", lambda: fired.append("globstar"))
    emitter.on("user.created", lambda: fired.append("exact"))
    emitter.emit("user.created")
    assert sorted(fired) == ["exact", "globstar", "star"]


def test_routes_are_recomputed_after_subscription_changes() -> None:
    emitter = EventEmitter()
    fired: list[str] = []
    emitter.emit("user.created")  # caches an empty route
    handle = emitter.on("user.*", lambda: fired.append("late"))
    emitter.emit("user.created")
    handle.off()
    emitter.emit("user.created")
    assert fired == ["late"]


def test_is_pattern() -> None:
    assert is_pattern("user.*")
    assert is_pattern("**")
    assert not is_pattern("user.created")
    assert not is_pattern("user.cre*ted")


SEGMENT = st.sampled_from(["a", "b", "c"])
PATTERN_SEGMENT = st.sampled_from(["a", "b", "c", "*", "**"])


@settings(max_examples=600, deadline=None)
@given(
    pattern=st.lists(PATTERN_SEGMENT, min_size=1, max_size=6),
    name=st.lists(SEGMENT, min_size=1, max_size=7),
)
def test_matching_agrees_with_the_reference(pattern: list[str], name: list[str]) -> None:
    expected = reference_match(pattern, name)
    assert match_segments(tuple(pattern), tuple(name)) is expected
    assert matches(".".join(pattern), ".".join(name)) is expected


@settings(max_examples=150, deadline=None)
@given(
    patterns=st.lists(st.lists(PATTERN_SEGMENT, min_size=1, max_size=4), min_size=1, max_size=6),
    names=st.lists(st.lists(SEGMENT, min_size=1, max_size=5), min_size=1, max_size=6),
)
def test_emit_reaches_exactly_the_matching_listeners(
    patterns: list[list[str]], names: list[list[str]]
) -> None:
    emitter = EventEmitter(max_listeners=0)
    fired: list[tuple[int, str]] = []
    for index, pattern in enumerate(patterns):
        emitter.on(".".join(pattern), lambda i=index, p=pattern: fired.append((i, "x")))
    for name in names:
        fired.clear()
        emitter.emit(".".join(name))
        expected = sorted(i for i, p in enumerate(patterns) if reference_match(p, name))
        assert sorted(i for i, _ in fired) == expected
