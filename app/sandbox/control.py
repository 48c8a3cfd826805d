"""The sandbox's own endpoints, beside the simulated systems and outside their fault layer.

Like a mail catcher, they show what the sandbox received, and they let a test or a demo act on
the sandbox as the world outside us would:

- ``GET /oracle/actions``, ``GET /yardi/actions``: the task actions clients sent, newest first
  (``?task=``, ``?user=``, ``?limit=``), each with its outcome;
- ``POST /oracle/decisions``, ``POST /yardi/decisions``: approve or reject a pending task at the
  source without us (someone decided it elsewhere), so the next sync sees it gone;
- ``GET``, ``POST``, ``DELETE /faults``: the faults forced on the next requests to a system (or,
  for FCM, on the next messages to one device token); ``DELETE`` also stops the random ones;
- ``GET``, ``PUT /faults/rates``: the share of a system's requests that fail at random (5xx,
  timeouts, 429 with ``Retry-After``), changed while the sandbox runs;
- ``GET /traffic``: the requests each system received, and the most it had in flight at once;
- ``GET /faults/retry-after``: whether the calls told to come back later (429 + ``Retry-After``,
  named by their ``X-Request-ID``) waited long enough.

Injected faults never reach these paths, and calling them is not traffic of the systems.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from app.sandbox.state import (
    ACTION_SOURCES,
    SYSTEMS,
    Fault,
    FaultRates,
    SandboxState,
    TaskNotPending,
)

MAX_LIMIT = 1000
NOT_PENDING_STATUS = {"not_found": 404, "already_decided": 409, "expired": 409}


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _limit(request: Request) -> int | None:
    raw = request.query_params.get("limit", "100")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        return None
    return int(raw)


def _actions(source: str) -> Any:
    async def list_actions(request: Request) -> Response:
        """The task actions ``source`` received, newest first."""
        limit = _limit(request)
        if limit is None:
            return _error(400, f"limit is an integer from 1 to {MAX_LIMIT}")
        params = request.query_params
        found = _state(request).received_actions(
            source, task=params.get("task"), user=params.get("user")
        )
        return JSONResponse({"items": [a.as_json() for a in found[:limit]], "total": len(found)})

    return list_actions


async def decide_task(request: Request) -> Response:
    """``{"task": 100006, "action": "APPROVE"|"REJECT", "actor"?, "comment"?}``."""
    body = await _body(request)
    number = body.get("task") if body else None
    if isinstance(number, str) and number.isdigit():
        number = int(number)
    if body is None or not isinstance(number, int) or isinstance(number, bool):
        return _error(400, "the body is {task: <BPM task number>, action: APPROVE or REJECT}")
    return _decide(body, lambda action, **kw: _state(request).decide_task(number, action, **kw))


async def decide_lease(request: Request) -> Response:
    """``{"record_id": "5000002", "action": "Approve"|"Reject", "actor"?, "comment"?}``."""
    body = await _body(request)
    record = body.get("record_id") if body else None
    if isinstance(record, str) and record.isdigit():
        record = int(record)
    if body is None or not isinstance(record, int) or isinstance(record, bool):
        return _error(400, "the body is {record_id: <Yardi record id>, action: Approve or Reject}")
    return _decide(body, lambda action, **kw: _state(request).decide_lease(record, action, **kw))


def _decide(body: dict[str, Any], decide: Any) -> Response:
    action, actor, comment = body.get("action"), body.get("actor", "sandbox"), body.get("comment")
    if not isinstance(action, str) or not isinstance(actor, str) or not actor:
        return _error(400, "action and actor are strings")
    if comment is not None and not isinstance(comment, str):
        return _error(400, "comment is a string")
    try:
        decision = decide(action, actor=actor, comment=comment)
    except ValueError as exc:
        return _error(400, str(exc))
    except TaskNotPending as exc:
        return _error(NOT_PENDING_STATUS[exc.reason], str(exc), reason=exc.reason)
    return JSONResponse(
        {"outcome": decision.outcome, "actor": decision.actor, "comment": decision.comment}
    )


async def faults(request: Request) -> Response:
    """List (GET), force (POST ``{system, status, retry_after?, times?, delay_seconds?, token?}``)
    or clear (DELETE, ``?system=`` for one) the faults waiting for the next requests.

    ``token`` (FCM only) forces the fault on the messages to that device token alone."""
    state = _state(request)
    if request.method == "GET":
        return JSONResponse({s: [asdict(f) for f in state.faults[s]] for s in SYSTEMS})
    if request.method == "DELETE":
        system = request.query_params.get("system")
        if system is not None and system not in SYSTEMS:
            return _error(400, f"system is one of {', '.join(SYSTEMS)}")
        for name in [system] if system else SYSTEMS:
            state.faults[name].clear()
            state.rates[name] = FaultRates()
        return Response(status_code=204)
    body = await _body(request)
    fault = _fault(body) if body is not None else None
    if (
        body is None
        or fault is None
        or body.get("system") not in SYSTEMS
        or (fault.token is not None and body["system"] != "fcm")
    ):
        return _error(
            400,
            "the body is {system: oracle|yardi|fcm, status: 400-599, retry_after?: seconds, "
            "times?: 1-10000, delay_seconds?: 0-60, token?: an FCM device token (fcm only)}",
        )
    state.inject(body["system"], fault)
    return JSONResponse({"system": body["system"], **asdict(fault)}, status_code=201)


RATE_FIELDS = ("error_rate", "timeout_rate", "rate_limit_rate")


async def fault_rates(request: Request) -> Response:
    """List (GET) or change (PUT ``{system, error_rate?, timeout_rate?, rate_limit_rate?,
    retry_after?, timeout_seconds?}``, the shares from 0 to 1) a system's random faults."""
    state = _state(request)
    if request.method == "GET":
        return JSONResponse({s: asdict(state.rates_of(s)) for s in SYSTEMS})
    body = await _body(request)
    rates = _rates(body, state) if body is not None else None
    if body is None or rates is None:
        return _error(
            400,
            "the body is {system: oracle|yardi|fcm, error_rate?, timeout_rate?, "
            "rate_limit_rate?: 0-1 (at most 1 together), retry_after?: 0-86400, "
            "timeout_seconds?: 0-600}",
        )
    state.rates[body["system"]] = rates
    return JSONResponse({"system": body["system"], **asdict(rates)})


def _rates(body: dict[str, Any], state: SandboxState) -> FaultRates | None:
    system = body.get("system")
    if system not in SYSTEMS:
        return None
    values = asdict(state.rates_of(system))
    for name in RATE_FIELDS:
        value = body.get(name, values[name])
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            return None
        values[name] = float(value)
    if sum(values[name] for name in RATE_FIELDS) > 1:
        return None
    retry_after = body.get("retry_after", values["retry_after"])
    if not _integer(retry_after, 0, 86_400):
        return None
    timeout = body.get("timeout_seconds", values["timeout_seconds"])
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 <= timeout <= 600:
        return None
    return FaultRates(
        **{name: values[name] for name in RATE_FIELDS},
        retry_after=retry_after,
        timeout_seconds=float(timeout),
    )


async def traffic(request: Request) -> Response:
    """The requests each system received (``requests``), its ``peak_in_flight`` and the callers
    that went away before their body arrived (``disconnected``)."""
    state = _state(request)
    return JSONResponse({s: asdict(state.traffic[s]) for s in SYSTEMS})


async def retry_after_ledger(request: Request) -> Response:
    """How the calls answered with a ``Retry-After`` came back: ``limited`` (answers with
    one), ``honoured`` (retries after it passed), ``early`` (retries before, with how early)."""
    ledger = _state(request).retry_after
    return JSONResponse(
        {"limited": ledger.limited, "honoured": ledger.honoured, "early": ledger.early}
    )


def _fault(body: dict[str, Any]) -> Fault | None:
    status, retry_after = body.get("status"), body.get("retry_after")
    times, delay = body.get("times", 1), body.get("delay_seconds", 0)
    if not _integer(status, 400, 599) or not _integer(times, 1, 10_000):
        return None
    assert isinstance(status, int)
    if retry_after is not None and not _integer(retry_after, 0, 86_400):
        return None
    if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay <= 60:
        return None
    token = body.get("token")
    if token is not None and (not isinstance(token, str) or not 0 < len(token) <= 4096):
        return None
    return Fault(
        status, retry_after=retry_after, times=times, delay_seconds=float(delay), token=token
    )


def _integer(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def control_routes() -> list[BaseRoute]:
    """The sandbox's own routes (list them before the systems' mounts)."""
    routes: list[BaseRoute] = [
        Route(f"/{source}/actions", _actions(source), methods=["GET"]) for source in ACTION_SOURCES
    ]
    routes += [
        Route("/oracle/decisions", decide_task, methods=["POST"]),
        Route("/yardi/decisions", decide_lease, methods=["POST"]),
        Route("/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/faults/rates", fault_rates, methods=["GET", "PUT"]),
        Route("/faults/retry-after", retry_after_ledger, methods=["GET"]),
        Route("/traffic", traffic, methods=["GET"]),
    ]
    return routes
