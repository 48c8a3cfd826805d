"""What every request may carry: a bounded body, and strings without the NUL character.

One ASGI middleware checks both before any route sees the request, so every route (and every
route added later) gets the same answers:

- a body over the limit is 413 ``payload_too_large``, refused from its ``Content-Length`` or,
  for a chunked body without one, as soon as the bytes read pass the limit (the body is never
  read whole first);
- a NUL character (U+0000) in a query parameter, a form field or a JSON string (value or key)
  is 422 ``validation_error`` naming the field, on SQLite and PostgreSQL alike (PostgreSQL
  cannot store it in text, SQLite would).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem

NUL = "\x00"
NUL_ERROR = "String should not contain the NUL character (U+0000)"


def nul_locations(value: Any, location: tuple[str | int, ...]) -> Iterator[list[str | int]]:
    """Yield the location of every string in ``value`` (parsed JSON) that contains NUL."""
    if isinstance(value, str):
        if NUL in value:
            yield list(location)
    elif isinstance(value, dict):
        for key, item in value.items():
            if NUL in key:
                yield [*location, key.replace(NUL, "\\u0000")]
            else:
                yield from nul_locations(item, (*location, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from nul_locations(item, (*location, index))


def refuse_nul(locations: Sequence[list[str | int]]) -> Any:
    """The 422 for strings that contain NUL, in the shape of every validation error."""
    errors = [{"loc": loc, "msg": NUL_ERROR, "type": "string_nul"} for loc in locations[:20]]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors)
    return problem(422, "validation_error", f"Invalid request: {fields}.", errors=errors)


class RequestLimits:
    """Refuse oversized bodies (413) and NUL characters in any string input (422).

    Args:
        app: the wrapped ASGI app.
        max_body_bytes: the body limit of every route.
        small_body_bytes: the tighter limit of the routes under ``small_body_paths``.
        small_body_paths: path prefixes that take small bodies (logins, token refresh).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        small_body_bytes: int,
        small_body_paths: Sequence[str] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.small_body_bytes = small_body_bytes
        self.small_body_paths = tuple(small_body_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"%00" in query or b"\x00" in query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            found = [["query", key.replace(NUL, "\\u0000")] for key, v in pairs if NUL in key + v]
            if found:
                await refuse_nul(found)(scope, receive, send)
                return
        limit = self._limit(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client left
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        found = _nul_in_body(scope, body)
        if found:
            await refuse_nul(found)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def _limit(self, path: str) -> int:
        if path.startswith(self.small_body_paths):
            return self.small_body_bytes
        return self.max_body_bytes


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _content_type(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-type":
            decoded: str = value.decode("latin-1").split(";")[0].strip().lower()
            return decoded
    return ""


def _nul_in_body(scope: Scope, body: bytes) -> list[list[str | int]]:
    content_type = _content_type(scope)
    if content_type == "application/x-www-form-urlencoded" and b"%00" in body:
        pairs = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
        return [["body", key.replace(NUL, "\\u0000")] for key, v in pairs if NUL in key + v]
    if b"\\u0000" not in body or not content_type.endswith("json"):
        return []
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        return []  # malformed: the route's own parsing answers it
    return list(nul_locations(parsed, ("body",)))


def _too_large(limit: int) -> Any:
    return problem(
        413,
        "payload_too_large",
        f"The request body is larger than this route accepts ({limit} bytes).",
        headers={"Connection": "close"},
        max_bytes=limit,
    )


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
