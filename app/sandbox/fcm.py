"""The FCM sandbox: HTTP v1 ``messages:send``, topic subscriptions, and the legacy Instance ID
``batchAdd``/``batchRemove``/``info`` shapes, with FCM's error bodies.

A token that starts with ``unregistered`` (or that a test marks with ``state.fcm.unregistered``)
answers 404 ``UNREGISTERED``, as a token of an uninstalled app does. A fault forced with a
``token`` (``POST /faults {"system": "fcm", "token": ..., "status": 429}``) answers the next
messages to that token only, so one multicast can fail for some devices and not others.
Every accepted message is kept in ``state.fcm.sent`` and listed, newest first, by
``GET /messages`` (like a mail catcher); ``GET /subscriptions`` lists the topic subscriptions.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from app.sandbox.faults import FaultInjection
from app.sandbox.state import Fault, SandboxState

FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
TOPIC = re.compile(r"^[a-zA-Z0-9-_.~%]+$")
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
MAX_PAYLOAD = 4096


def _state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def google_error(status: int, message: str, fcm_code: str | None = None) -> JSONResponse:
    """FCM's v1 error body, with an ``FcmError`` detail when there is an FCM code."""
    error: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if fcm_code:
        error["details"] = [{"@type": FCM_ERROR, "errorCode": fcm_code}]
    return JSONResponse({"error": error}, status_code=status)


def _authorized(request: Request) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _unauthenticated() -> JSONResponse:
    return google_error(401, "Request is missing required authentication credential.")


def _token_problem(state: SandboxState, token: str) -> JSONResponse | None:
    if len(token) < 8 or any(c.isspace() for c in token):
        return google_error(
            400, "The registration token is not a valid FCM registration token", "INVALID_ARGUMENT"
        )
    if token.startswith("unregistered") or token in state.fcm.unregistered:
        return google_error(404, "Requested entity was not found.", "UNREGISTERED")
    return None


async def send(request: Request) -> Response:
    """``POST /v1/projects/{project}/messages:send``."""
    if not _authorized(request):
        return _unauthenticated()
    state = _state(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return google_error(400, "Invalid JSON payload received.")
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return google_error(400, "Invalid JSON payload received. Unknown name or missing message.")
    targets = [k for k in ("token", "topic", "condition", "fid") if message.get(k)]
    if len(targets) != 1:
        return google_error(
            400, "Exactly one of token, topic, condition or fid must be set.", "INVALID_ARGUMENT"
        )
    token = message.get("token") or message.get("fid")
    if isinstance(token, str) and (fault := state.token_fault(token)) is not None:
        return _fault(request, fault)
    if isinstance(token, str) and (problem := _token_problem(state, token)) is not None:
        return problem
    topic = message.get("topic")
    if isinstance(topic, str) and not TOPIC.match(topic):
        return google_error(400, "Invalid topic name.", "INVALID_ARGUMENT")
    payload = {k: message[k] for k in ("data", "notification") if k in message}
    limit = 2048 if topic else MAX_PAYLOAD
    if len(json.dumps(payload)) > limit:
        return google_error(400, f"Message payload exceeds {limit} bytes.", "INVALID_ARGUMENT")
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return google_error(
            400, "Invalid value at 'message.data': values must be strings.", "INVALID_ARGUMENT"
        )
    state.fcm.counter += 1
    name = f"projects/{request.path_params['project']}/messages/{state.fcm.counter}"
    if not body.get("validate_only"):
        state.fcm.sent.append({"name": name, "message": message, "at": state.clock()})
    if state.fcm.answer_delay_seconds:
        await asyncio.sleep(state.fcm.answer_delay_seconds)
    return JSONResponse({"name": name})


def _subscription(project: str, token: str, topic: str, at: float) -> dict[str, str]:
    return {
        "name": f"projects/{project}/registrations/{token}/topicSubscriptions/{topic}",
        "topic_name": topic,
        "create_time": datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z"),
    }


async def subscriptions(request: Request) -> Response:
    """``POST`` (subscribe, ``?topic_name=``) or ``GET`` (list) a token's topic subscriptions."""
    if not _authorized(request):
        return _unauthenticated()
    state = _state(request)
    project, token = request.path_params["project"], request.path_params["token"]
    if (problem := _token_problem(state, token)) is not None:
        return problem
    topics = state.fcm.topics.setdefault(token, {})
    if request.method == "GET":
        names = sorted(topics)
        size = min(int(request.query_params.get("pageSize") or 1000), 2000)
        start = int(request.query_params.get("pageToken") or 0)
        page = names[start : start + size]
        body: dict[str, Any] = {
            "topic_subscriptions": [_subscription(project, token, t, topics[t]) for t in page]
        }
        if start + size < len(names):
            body["next_page_token"] = str(start + size)
        return JSONResponse(body)
    topic = request.query_params.get("topic_name", "")
    if not TOPIC.match(topic):
        return google_error(400, "Invalid topic name.", "INVALID_ARGUMENT")
    if topic in topics:
        return google_error(409, f"Subscription to {topic} already exists.")
    topics[topic] = state.clock()
    return JSONResponse(_subscription(project, token, topic, topics[topic]))


async def unsubscribe(request: Request) -> Response:
    """``DELETE .../topicSubscriptions/{topic}?allow_missing=true``."""
    if not _authorized(request):
        return _unauthenticated()
    state = _state(request)
    token, topic = request.path_params["token"], request.path_params["topic"]
    if (problem := _token_problem(state, token)) is not None:
        return problem
    topics = state.fcm.topics.get(token, {})
    if topic not in topics and request.query_params.get("allow_missing") != "true":
        return google_error(404, f"Subscription to {topic} not found.")
    topics.pop(topic, None)
    return JSONResponse({})


async def iid_batch(request: Request) -> Response:
    """Legacy ``POST /iid/v1:batchAdd`` and ``:batchRemove``: per-token ``results``."""
    if not _authorized(request):
        return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
    state = _state(request)
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "INVALID_ARGUMENT"}, status_code=400)
    to = body.get("to") if isinstance(body, dict) else None
    tokens = body.get("registration_tokens") if isinstance(body, dict) else None
    topic = to[len("/topics/") :] if isinstance(to, str) and to.startswith("/topics/") else ""
    if not TOPIC.match(topic) or not isinstance(tokens, list) or not 0 < len(tokens) <= 1000:
        return JSONResponse({"error": "INVALID_ARGUMENT"}, status_code=400)
    adding = request.url.path.endswith(":batchAdd")
    results: list[dict[str, str]] = []
    for token in tokens:
        problem = _token_problem(state, token) if isinstance(token, str) else None
        if not isinstance(token, str) or (problem is not None and problem.status_code == 400):
            results.append({"error": "INVALID_ARGUMENT"})
        elif problem is not None:
            results.append({"error": "NOT_FOUND"})
        else:
            topics = state.fcm.topics.setdefault(token, {})
            if adding:
                topics.setdefault(topic, state.clock())
            else:
                topics.pop(topic, None)
            results.append({})
    return JSONResponse({"results": results})


async def iid_info(request: Request) -> Response:
    """Legacy ``GET /iid/info/{token}?details=true``: the token's topics."""
    if not _authorized(request):
        return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
    state = _state(request)
    token = request.path_params["token"]
    if _token_problem(state, token) is not None:
        return JSONResponse(
            {"error": "No information found about this instance id."}, status_code=404
        )
    body: dict[str, Any] = {
        "application": "com.example.workflowhub",
        "authorizedEntity": "sandbox",
        "platform": "ANDROID",
    }
    if request.query_params.get("details") == "true":
        topics = state.fcm.topics.get(token, {})
        body["rel"] = {
            "topics": {
                t: {"addDate": datetime.fromtimestamp(at, UTC).date().isoformat()}
                for t, at in topics.items()
            }
        }
    return JSONResponse(body)


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _limit(request: Request, default: int = 100) -> int | None:
    raw = request.query_params.get("limit", str(default))
    return int(raw) if raw.isdigit() and 1 <= int(raw) <= 10_000 else None


def accepted_messages(
    state: SandboxState, *, token: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """What the fake FCM accepted, newest first, optionally for one token (at most ``limit``)."""
    items = []
    for sent in reversed(state.fcm.sent):
        message = sent["message"]
        if token is not None and message.get("token") != token:
            continue
        notification = message.get("notification", {})
        items.append(
            {
                "name": sent["name"],
                "token": message.get("token"),
                "topic": message.get("topic"),
                "title": notification.get("title"),
                "body": notification.get("body"),
                "data": message.get("data", {}),
                "android": message.get("android"),
                "apns": message.get("apns"),
                "time": _iso(sent["at"]),
            }
        )
        if len(items) == limit:
            break
    return items


async def messages(request: Request) -> Response:
    """``GET /messages``: what the fake FCM accepted, newest first (``?token=``, ``?limit=``).

    Like a mail catcher: the demo shows a push arriving without a phone, and tests count the
    pushes at the receiver. The console's sandbox page lists the same.
    """
    limit = _limit(request)
    if limit is None:
        return JSONResponse({"error": "limit is a number from 1 to 10000"}, status_code=400)
    state = _state(request)
    items = accepted_messages(state, token=request.query_params.get("token"), limit=limit)
    return JSONResponse({"items": items, "total": len(state.fcm.sent)})


async def subscriptions_view(request: Request) -> Response:
    """``GET /subscriptions``: every token's topics (``?token=``, ``?topic=`` narrow it)."""
    token, topic = request.query_params.get("token"), request.query_params.get("topic")
    items = [
        {"token": t, "topic": name, "since": _iso(at)}
        for t, topics in sorted(_state(request).fcm.topics.items())
        if token is None or t == token
        for name, at in sorted(topics.items())
        if topic is None or name == topic
    ]
    return JSONResponse({"items": items})


def _fault(_request: Request, fault: Fault) -> Response:
    fcm_code = "QUOTA_EXCEEDED" if fault.status == 429 else None
    response = google_error(fault.status, HTTPStatus(fault.status).phrase, fcm_code)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


def build_fcm(state: SandboxState) -> ASGIApp:
    """Return the ASGI app serving FCM's and Instance ID's paths (mount it under ``/fcm``).

    ``GET /messages`` and ``GET /subscriptions`` show what it received; they are not faulted.
    """
    api = Starlette(
        routes=[
            Route("/v1/projects/{project}/messages:send", send, methods=["POST"]),
            Route(
                "/v1/projects/{project}/registrations/{token}/topicSubscriptions",
                subscriptions,
                methods=["GET", "POST"],
            ),
            Route(
                "/v1/projects/{project}/registrations/{token}/topicSubscriptions/{topic}",
                unsubscribe,
                methods=["DELETE"],
            ),
            Route("/iid/v1:batchAdd", iid_batch, methods=["POST"]),
            Route("/iid/v1:batchRemove", iid_batch, methods=["POST"]),
            Route("/iid/info/{token}", iid_info),
        ]
    )
    api.state.sandbox = state
    faulted = FaultInjection(api, system="fcm", state=state, render=_fault)
    app = Starlette(
        routes=[
            Route("/messages", messages),
            Route("/subscriptions", subscriptions_view),
            Mount("/", faulted),
        ]
    )
    app.state.sandbox = state
    return app
