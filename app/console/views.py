"""Rendering: the Jinja2 environment (autoescaped), its filters, and the page response.

Every value reaches the HTML through Jinja2's autoescaping: task titles, error texts and
payloads from the sources are shown, never interpreted. Pages are never cached and may not be
framed, and the content security policy admits only the console's own script and stylesheet.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from app.console.security import csrf_token
from app.core.db import utcnow
from app.core.security import Principal, app_settings

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
REFRESH_SECONDS = 5
"""How often the self-refreshing parts of a page (the overview, a running job) reload."""

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _when(value: datetime | None) -> str:
    """A stored time as ``YYYY-MM-DD HH:MM:SS UTC``."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None) -> str:
    """How long ago ``value`` was, roughly (``in 3 min`` for the future)."""
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = int((utcnow() - value).total_seconds())
    future, seconds = seconds < 0, abs(seconds)
    if seconds < 60:
        text = f"{seconds} s"
    elif seconds < 3600:
        text = f"{seconds // 60} min"
    elif seconds < 86400:
        text = f"{seconds // 3600} h {seconds % 3600 // 60} min"
    else:
        text = f"{seconds // 86400} d"
    return f"in {text}" if future else f"{text} ago"


def _seconds(value: float | None) -> str:
    """A number of seconds as ``1 h 2 min``, ``3 min 4 s`` or ``5.6 s``."""
    if value is None:
        return "unknown"
    if value < 60:
        return f"{value:.1f} s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _duration(run: Any) -> str:
    """How long a run took (``finished_at - started_at``)."""
    if getattr(run, "finished_at", None) is None:
        return ""
    return _seconds((run.finished_at - run.started_at).total_seconds())


def _epoch(value: float) -> datetime:
    """Epoch seconds as an aware UTC time."""
    return datetime.fromtimestamp(value, UTC)


def _pretty(value: Any) -> str:
    """A payload as indented JSON (a string that is not JSON stays as it is)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, default=str)


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.filters["when"] = _when
templates.env.filters["ago"] = _ago
templates.env.filters["pretty"] = _pretty
templates.env.filters["epoch"] = _epoch
templates.env.filters["seconds"] = _seconds
templates.env.filters["duration"] = _duration
templates.env.globals["refresh_seconds"] = REFRESH_SECONDS


def render(
    request: Request,
    template: str,
    *,
    status_code: int = 200,
    admin: Principal | None = None,
    csrf_binding: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a console page; forms on it carry the CSRF token of the admin's session."""
    settings = app_settings(request)
    binding = csrf_binding or (str(admin.session_id) if admin is not None else None)
    values = {
        "admin": admin,
        "csrf_token": csrf_token(settings.security, binding) if binding else "",
        "app_name": settings.app.name,
        "sandbox_mounted": settings.sandbox.enabled,
        "now": utcnow(),
        **context,
    }
    response = templates.TemplateResponse(request, template, values, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
