"""Every console page under one router, mounted at /console (and kept out of the OpenAPI)."""

from __future__ import annotations

from fastapi import APIRouter

from app.console import deliveries, events, integrations, jobs, login, overview, sandbox

router = APIRouter(include_in_schema=False)
for pages in (
    login.router,
    overview.router,
    jobs.router,
    deliveries.router,
    events.router,
    integrations.router,
    sandbox.router,
):
    router.include_router(pages, prefix="/console")
