"""Admin REST route of the emitter: the event catalog as an AsyncAPI 3.0 document."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from app.core.security import RequireAdmin
from app.events.asyncapi import asyncapi_document

router = APIRouter(prefix="/admin/events", tags=["events"])


@router.get("/catalog")
async def read_catalog(admin: RequireAdmin, request: Request) -> dict[str, Any]:
    """Describe every event and every listener as an AsyncAPI 3.0 document."""
    return asyncapi_document(
        request.app.state.emitter, title=request.app.title, version=request.app.version
    )
