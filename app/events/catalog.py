"""The event catalog as Markdown: ``docs/events.md`` holds this table, generated, never typed.

``python -m app events catalog --update docs/events.md`` rewrites the table between the file's
markers from the application emitter's :meth:`~app.events.AppEmitter.catalog`, and a test fails
when the two disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONTRACTS = "app.contracts."
START = "<!-- catalog:start (generated: python -m app events catalog --update docs/events.md) -->"
END = "<!-- catalog:end -->"


def catalog_table(catalog: Mapping[str, Any]) -> str:
    """Return the Markdown table of the contracts' events and who listens to them.

    Args:
        catalog: what ``AppEmitter.catalog()`` returns. Events declared outside
            ``app/contracts`` (tests, benchmarks) and extra listeners are left out.

    Returns:
        One row per event, by name: class (publisher), its listeners with their delivery, and
        the first line of its docstring.
    """
    rows = [
        "| event | class (publisher) | listeners (module: function, delivery) | meaning |",
        "|---|---|---|---|",
    ]
    for event in catalog["events"]:
        if not str(event["class"]).startswith(CONTRACTS):
            continue
        listeners = sorted(
            f"{entry['module']}: `{_short(entry['listener'])}` ({entry['delivery']})"
            for entry in event["listeners"]
            if entry["module"] not in (None, "extra")
        )
        meaning = str(event["description"]).split("\n", 1)[0].strip()
        rows.append(
            f"| `{event['name']}` | `{_short(event['class'])}` "
            f"({event['publisher']}) | {'<br>'.join(listeners) or '-'} | {meaning} |"
        )
    return "\n".join(rows) + "\n"


def _short(dotted: object) -> str:
    return str(dotted).rsplit(".", 1)[-1]


def replace_table(document: str, table: str) -> str:
    """Return ``document`` with the text between its catalog markers replaced by ``table``.

    Raises:
        ValueError: the document lacks the markers.
    """
    head, start, rest = document.partition(START)
    _, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"the document has no {START!r} ... {END!r} markers")
    return f"{head}{START}\n{table}{END}{tail}"
