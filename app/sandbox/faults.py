"""ASGI middleware that makes a sandbox system slow, flaky, rate limited or unreachable.

It also keeps the :class:`~app.sandbox.state.RetryAfterLedger`: when a call it answered with a
``Retry-After`` (named by its ``X-Request-ID``) comes back, and whether that was too soon.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.sandbox.state import Fault, SandboxState

FaultRenderer = Callable[[Request, Fault], Awaitable[Response] | Response]


class FaultInjection:
    """Counts traffic, adds latency and answers with injected faults for one system."""

    def __init__(
        self, app: ASGIApp, *, system: str, state: SandboxState, render: FaultRenderer
    ) -> None:
        self.app = app
        self.system = system
        self.state = state
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _header(scope, b"x-request-id")
        if request_id:
            self.state.retry_after.arrived(self.system, request_id, time.monotonic())
        traffic = self.state.traffic[self.system]
        traffic.requests += 1
        traffic.in_flight += 1
        traffic.peak_in_flight = max(traffic.peak_in_flight, traffic.in_flight)
        try:
            delay = self.state.latency()
            if delay:
                await asyncio.sleep(delay)
            fault = self.state.next_fault(self.system)
            if fault is None:
                await self.app(scope, receive, send)
                return
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            response = self.render(Request(scope, receive), fault)
            if not isinstance(response, Response):
                response = await response
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
                self.state.retry_after.told_to_wait(request_id, fault.retry_after, time.monotonic())
            await response(scope, receive, send)
        except ClientDisconnect:
            # The caller went away before its request's body arrived (a client killed mid-call,
            # or one that gave up): nobody is left to answer, and it is not the simulator's bug.
            traffic.disconnected += 1
        finally:
            traffic.in_flight -= 1


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
