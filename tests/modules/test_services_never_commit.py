"""Services never commit: only the edges of a module own a transaction.

A request's transaction is the request dependency's; a listener's, a job's or a command's is its
``session_scope()``. Work that must commit on its own uses ``own_transaction()``, and only at an
edge: a listener, a job, a command, or the login route that counts attempts.
"""

from __future__ import annotations

import re
from pathlib import Path

MODULES = Path(__file__).resolve().parents[2] / "app" / "modules"

EDGES = {"listeners.py", "jobs.py", "cli.py"}
OWN_TRANSACTION_ROUTES = {"auth/router.py"}  # the login-attempt counter

COMMIT = re.compile(r"session\.commit|\.commit\(\)|\.rollback\(\)")
SEPARATE = re.compile(r"own_transaction\(|join=False|sessionmaker\(|\.begin\(\)")


def _sources() -> list[tuple[str, str]]:
    return [
        (path.relative_to(MODULES).as_posix(), path.read_text())
        for path in sorted(MODULES.rglob("*.py"))
    ]


def test_no_module_commits_or_rolls_back_by_hand() -> None:
    offenders = [name for name, text in _sources() if COMMIT.search(text)]
    assert offenders == []


def test_separate_transactions_are_opened_only_at_the_edges() -> None:
    offenders = [
        name
        for name, text in _sources()
        if SEPARATE.search(text)
        and Path(name).name not in EDGES
        and name not in OWN_TRANSACTION_ROUTES
    ]
    assert offenders == []


def test_services_take_settings_as_arguments() -> None:
    offenders = [
        name
        for name, text in _sources()
        if "get_settings(" in text and Path(name).name not in EDGES | {"router.py", "module.py"}
    ]
    assert offenders == ["user/provisioning.py"]  # the demo seed hook; see ModuleSpec.seed_demo
