"""The OpenAPI document declares every answer: the success, and each problem with its media type.

Every error is ``application/problem+json`` in one shape, the ``Problem`` schema, 422 included
(FastAPI's default ``HTTPValidationError`` is replaced, since it is never served). The problem
statuses are added to every operation of the API, including routes that modules mount later, so
a generated client knows every answer; the ops routes declare the 500 and 503 they can serve.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.errors import PROBLEM_JSON

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "An error (RFC 9457). `code` is stable and machine-readable.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "example": "about:blank#validation_error"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "example": "validation_error"},
        "correlation_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "description": "422 only: at most 20 invalid inputs (`errors_total` counts them all).",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": ["string", "null"]},
                },
            },
        },
        "errors_total": {"type": "integer"},
        "retry_after": {"type": "integer", "description": "429: seconds to wait."},
        "max_bytes": {"type": "integer", "description": "413: the route's body limit."},
    },
    "additionalProperties": True,
}

API_PROBLEMS = {
    400: "The request cannot be processed as sent (see `code`).",
    401: "No valid access token, or wrong credentials.",
    403: "The caller may not do this.",
    404: "No such resource in the caller's organisation, or no such route.",
    405: "The route does not take this method.",
    409: "The resource is in a conflicting state.",
    413: "The body is over the route's limit (`payload_too_large`).",
    415: "The body's media type is not accepted.",
    422: "Invalid input (`validation_error`), or a domain rule refused it.",
    429: "Too many requests; see `Retry-After`.",
    500: "An unexpected error; quote `correlation_id`.",
    502: "An external system failed the request.",
    503: "The database is busy (`database_busy`) or an external system is unavailable; "
    "see `Retry-After`.",
}
OPS_PROBLEMS = {500: API_PROBLEMS[500], 503: "Not ready, or the database is busy."}


def install_openapi(app: FastAPI, *, api_prefix: str) -> None:
    """Build ``app``'s document (once, on first request) with the problem responses declared."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = with_problems(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                ),
                api_prefix=api_prefix,
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def with_problems(document: dict[str, Any], *, api_prefix: str) -> dict[str, Any]:
    """Declare the ``Problem`` answers of every operation of ``document``; returns it."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    reference = {"$ref": "#/components/schemas/Problem"}
    for path, operations in document.get("paths", {}).items():
        problems = API_PROBLEMS if path.startswith(api_prefix) else OPS_PROBLEMS
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in problems.items():
                responses[str(status)] = {
                    "description": description,
                    "content": {PROBLEM_JSON: {"schema": reference}},
                }
    return document
