"""Events: the catalog of every event, who publishes it and who listens, with their delivery.

It is read from the emitter's own catalog (the AsyncAPI document ``GET
/api/v1/admin/events/catalog`` serves), so the page and the API never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response

from app.console.security import ConsoleAdmin
from app.console.views import render
from app.events.asyncapi import asyncapi_document

router = APIRouter()


@dataclass(frozen=True, slots=True)
class Listener:
    name: str
    module: str
    delivery: str
    priority: int
    pattern: str


@dataclass
class CatalogEntry:
    name: str
    summary: str
    version: int
    publishers: list[str] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)


def catalog_entries(document: dict[str, Any]) -> list[CatalogEntry]:
    """Turn an AsyncAPI catalog into one entry per event, in name order."""
    messages = document.get("components", {}).get("messages", {})
    entries: dict[str, CatalogEntry] = {}
    for name, channel in document.get("channels", {}).items():
        [message_id] = channel["messages"]
        message = messages.get(message_id, {})
        entries[name] = CatalogEntry(
            name=name, summary=message.get("summary", ""), version=message.get("x-version", 1)
        )
    for operation in document.get("operations", {}).values():
        channel_name = operation["channel"]["$ref"].removeprefix("#/channels/")
        entry = entries.get(channel_name)
        if entry is None:
            continue
        if operation["action"] == "send":
            entry.publishers.append(str(operation.get("x-module") or "?"))
        else:
            entry.listeners.append(
                Listener(
                    name=str(operation.get("x-listener", "?")),
                    module=str(operation.get("x-module") or "?"),
                    delivery=str(operation.get("x-delivery", "?")),
                    priority=int(operation.get("x-priority") or 0),
                    pattern=str(operation.get("x-pattern", channel_name)),
                )
            )
    for entry in entries.values():
        entry.listeners.sort(key=lambda item: (-item.priority, item.name))
    return [entries[name] for name in sorted(entries)]


@router.get("/events", response_class=Response)
async def events(request: Request, admin: ConsoleAdmin) -> Response:
    """The event catalog."""
    app = request.app
    document = asyncapi_document(app.state.emitter, title=app.title, version=app.version)
    return render(
        request, "events.html", admin=admin, page="events", entries=catalog_entries(document)
    )
