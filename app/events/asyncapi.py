"""Export the event catalog as an AsyncAPI 3.0 document.

Each declared event is a channel (its address is the event name) with one message whose payload
is the event's JSON schema and whose headers are the envelope. Publishing modules get a ``send``
operation, and every subscribed listener a ``receive`` operation on each channel it matches,
with its delivery and priority as extensions.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from app.events.app_emitter import AppEmitter, delivery_of
from app.events.base import event_types
from app.events.patterns import matches

REF_TEMPLATE = "#/components/schemas/{model}"

ENVELOPE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "The envelope of every emission.",
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Time-ordered event id."},
        "name": {"type": "string", "description": "The event name (the channel address)."},
        "occurred_at": {"type": "string", "format": "date-time"},
        "correlation_id": {"type": "string", "description": "The request or root event."},
        "causation_id": {
            "type": ["string", "null"],
            "format": "uuid",
            "description": "The event whose listener emitted this one.",
        },
        "organization_id": {"type": "string", "format": "uuid", "description": "The tenant."},
        "version": {"type": "integer", "description": "The contract version."},
    },
    "required": ["id", "name", "occurred_at", "correlation_id", "organization_id", "version"],
}


def _key(text: str) -> str:
    return re.sub(r"[^\w.\-]", "_", text)


def asyncapi_document(emitter: AppEmitter, *, title: str, version: str) -> dict[str, Any]:
    """Build the AsyncAPI 3.0 document of every declared event and ``emitter``'s listeners.

    Args:
        emitter: the application emitter whose subscriptions become ``receive`` operations.
        title: the document's title.
        version: the application version.

    Returns:
        A JSON-ready AsyncAPI 3.0 document.
    """
    types = dict(sorted(event_types().items()))
    _, definitions = models_json_schema(
        [(cls, "validation") for cls in types.values()], ref_template=REF_TEMPLATE
    )
    schemas: dict[str, Any] = definitions.get("$defs", {})
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name, cls in types.items():
        message_id = cls.__name__
        messages[message_id] = {
            "name": name,
            "title": cls.__name__,
            "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
            "contentType": "application/json",
            "headers": ENVELOPE_HEADERS,
            "payload": {"$ref": REF_TEMPLATE.format(model=cls.__name__)},
            "x-version": cls.version,
        }
        channels[name] = {
            "address": name,
            "messages": {message_id: {"$ref": f"#/components/messages/{message_id}"}},
        }
        publisher = cls.__module__.rsplit(".", 1)[-1]
        operations[_key(f"{publisher}.publishes.{name}")] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "x-module": publisher,
        }
    for sub in emitter.subscriptions():
        if sub.is_any:
            continue
        for name in types:
            if not matches(sub.event, name):
                continue
            operations[_key(f"{sub.name}.receives.{name}")] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{name}"},
                "x-module": sub.spec.module,
                "x-listener": sub.name,
                "x-pattern": sub.event,
                "x-delivery": delivery_of(sub),
                "x-priority": sub.priority,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Typed events exchanged by Workflow Hub's modules through its emitter.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
