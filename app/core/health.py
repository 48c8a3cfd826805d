"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from app.core.db import get_database
from app.core.errors import problem

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the process is up."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
async def readyz() -> dict[str, str] | Response:
    """Answer 200 when the database is reachable, 503 otherwise."""
    try:
        await get_database().ping()
    except Exception as exc:
        logger.warning("readiness check failed: %s", exc)
        return problem(503, "not_ready", "The database is not reachable.")
    return {"status": "ready", "database": "ok"}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    """Expose Prometheus metrics (the text exposition format)."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
