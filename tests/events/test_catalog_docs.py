"""docs/events.md shows the emitter's catalog: generated, and checked against the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.settings import Settings
from app.events.catalog import END, START, catalog_table, replace_table
from app.runtime import build_emitter


def test_the_documented_catalog_is_the_emitters(settings: Settings, project_root: Path) -> None:
    document = (project_root / "docs" / "events.md").read_text()
    table = catalog_table(build_emitter(settings).catalog())
    assert "| `user.created` | `UserCreated` (user) | auth: " in table
    assert replace_table(document, table) == document, (
        "docs/events.md disagrees with the code: run "
        "`python -m app events catalog --update docs/events.md`"
    )


def test_only_the_contracts_and_the_modules_listeners_are_listed() -> None:
    listener = {"listener": "app.modules.user.listeners.when_x", "delivery": "durable"}
    catalog = {
        "events": [
            {
                "name": "probe.emitted",
                "class": "tests.events.outbox_support.ProbeEmitted",
                "publisher": "outbox_support",
                "description": "A test's event.",
                "listeners": [],
            },
            {
                "name": "user.created",
                "class": "app.contracts.user.UserCreated",
                "publisher": "user",
                "description": "A user was added.\n\nMore words.",
                "listeners": [
                    {**listener, "module": "user"},
                    {**listener, "module": "extra", "listener": "tests.x.when_y"},
                ],
            },
        ]
    }
    rows = catalog_table(catalog).splitlines()
    assert rows[2:] == [
        "| `user.created` | `UserCreated` (user) | user: `when_x` (durable) | A user was added. |"
    ]


def test_a_document_without_the_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        replace_table("# Events\n", "| a |\n")
    assert replace_table(f"x\n{START}\nold\n{END}\ny\n", "new\n") == f"x\n{START}\nnew\n{END}\ny\n"
