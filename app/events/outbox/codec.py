"""Stored events back to typed events: the relay's side of the outbox's JSON payloads."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from app.events.base import Envelope, Event, event_type
from app.events.outbox.errors import PayloadInvalid
from app.events.outbox.store import Claim


def rebuild(claimed: Claim) -> tuple[Event, Envelope]:
    """Rebuild the typed event and its envelope from a stored row.

    The claim hands the payload over as stored text, and it is decoded here, so a payload that
    cannot be decoded fails its own delivery instead of every claim.

    Raises:
        PayloadInvalid: the event name is no longer declared, or its payload is not JSON Python
            can decode or no longer validates against the contract (the delivery becomes a
            dead letter).
    """
    cls = event_type(claimed.name)
    if cls is None:
        raise PayloadInvalid(f"no Event class declares {claimed.name!r} any more")
    payload = _decode(claimed)
    try:
        event = cls.model_validate(payload)
    except (ValidationError, TypeError, ValueError) as exc:
        raise PayloadInvalid(
            f"the stored payload of {claimed.name!r} (version {claimed.version}) does not "
            f"validate against {cls.__module__}.{cls.__qualname__} (version {cls.version}): "
            f"{exc}"
        ) from exc
    envelope = Envelope(
        id=claimed.event_id,
        name=claimed.name,
        organization_id=claimed.organization_id,
        correlation_id=claimed.correlation_id,
        causation_id=claimed.causation_id,
        version=claimed.version,
        occurred_at=claimed.occurred_at,
    )
    return event, envelope


def _decode(claimed: Claim) -> Any:
    # RecursionError: nesting that PostgreSQL's jsonb accepts can exceed Python's decoder.
    try:
        return json.loads(claimed.payload)
    except (ValueError, RecursionError) as exc:
        raise PayloadInvalid(
            f"the stored payload of {claimed.name!r} (version {claimed.version}) cannot be "
            f"decoded as JSON: {exc}"
        ) from exc
