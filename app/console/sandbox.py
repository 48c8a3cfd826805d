"""Sandbox: what the simulators received, so a demo shows a push arriving without a phone and
an approval reaching Oracle or Yardi.

Only where the sandbox is mounted (``SANDBOX_ENABLED``: dev, demo and tests; refused in prod);
elsewhere the page does not exist. The simulators are shared by the whole process, so the page
shows what they received from every organisation, as ``GET /sandbox/fcm/messages`` does.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from app.console.security import ConsoleAdmin
from app.console.views import render
from app.core.errors import NotFound
from app.sandbox.fcm import accepted_messages
from app.sandbox.state import ACTION_SOURCES, SandboxState

router = APIRouter()

SHOWN = 50


class SandboxNotMounted(NotFound):
    code = "sandbox_not_mounted"
    detail = "The sandbox is not mounted in this process (SANDBOX_ENABLED=false)."


def _state(request: Request) -> SandboxState:
    state = getattr(request.app.state, "sandbox", None)
    if not isinstance(state, SandboxState):
        raise SandboxNotMounted()
    return state


def _received(state: SandboxState) -> dict[str, Any]:
    """The pushes the fake FCM accepted and the task actions Oracle and Yardi received."""
    return {
        "pushes": accepted_messages(state, limit=SHOWN),
        "pushes_total": len(state.fcm.sent),
        "actions": {
            source: [action.as_json() for action in state.received_actions(source)[:SHOWN]]
            for source in ACTION_SOURCES
        },
    }


@router.get("/sandbox", response_class=Response)
async def sandbox(request: Request, admin: ConsoleAdmin) -> Response:
    """What the simulators received, newest first."""
    received = _received(_state(request))
    return render(request, "sandbox.html", admin=admin, page="sandbox", **received)


@router.get("/sandbox/live", response_class=Response)
async def sandbox_live(request: Request, admin: ConsoleAdmin) -> Response:
    """The page's lists alone, for its refresh script."""
    return render(request, "_sandbox.html", admin=admin, **_received(_state(request)))
