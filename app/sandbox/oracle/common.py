"""What every simulated Oracle Fusion endpoint shares: auth, errors, framework versions, ADF shapes.

Auth (as the issue describes the sandbox): basic with the integration account ``integration``
(a worklist administrator) or any person's username, both with the sandbox password; or a
bearer JWT (RS256) signed with the demo organisation's key, naming the user in ``prn`` or
``sub``. Anything else gets a 401.

Errors are plain text, or ADF's ``o:errorDetails`` JSON when an ADF resource is asked with
``Accept: application/vnd.oracle.adf.error+json``. BPM always answers plain text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from app.sandbox.state import Fault, SandboxState

INTEGRATION_USER = "integration"
ADF_ERROR = "application/vnd.oracle.adf.error+json"
ADF_COLLECTION = "application/vnd.oracle.adf.resourcecollection+json"
ADF_ITEM = "application/vnd.oracle.adf.resourceitem+json"
DEFAULT_FRAMEWORK_VERSION = 1
MAX_FRAMEWORK_VERSION = 8


class OracleError(Exception):
    """An error answer, rendered in the shape the request asked for."""

    def __init__(self, status: int, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.code = code


@dataclass(frozen=True)
class Identity:
    username: str
    person: int | None
    admin: bool


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


def authenticate(request: Request) -> Identity:
    """Return who is calling, or raise a 401."""
    state = state_of(request)
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    username: str | None = None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        user, _, password = decoded.partition(":")
        if password == state.password:
            username = user
    elif scheme.lower() == "bearer" and state.public_key is not None:
        try:
            claims = jwt.decode(
                value, state.public_key, algorithms=["RS256"], options={"require": ["exp"]}
            )
        except jwt.InvalidTokenError:
            claims = {}
        username = claims.get("prn") or claims.get("sub")
    if username:
        if username.lower() == INTEGRATION_USER:
            return Identity(INTEGRATION_USER, None, admin=True)
        index = state.data.index_of_username(str(username))
        if index is not None:
            return Identity(state.data.person(index).username, index, admin=False)
    raise OracleError(401, "Authentication failed.")


def framework_version(request: Request) -> int:
    """Return the requested ``REST-Framework-Version`` (HCM's default is 1)."""
    raw = request.headers.get("REST-Framework-Version")
    if raw is None:
        return DEFAULT_FRAMEWORK_VERSION
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_FRAMEWORK_VERSION:
        raise OracleError(400, f"The REST framework version {raw} is not supported.")
    return int(raw)


def base_url(request: Request) -> str:
    """The URL the sandbox's Oracle answers at, as the client reached it."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return f"{request.url.scheme}://{request.url.netloc}{root}"


def error_response(request: Request, exc: Exception) -> Response:
    """Render an :class:`OracleError` as ADF JSON or plain text."""
    assert isinstance(exc, OracleError)
    headers = (
        {"WWW-Authenticate": 'Basic realm="Oracle Fusion sandbox"'} if exc.status == 401 else None
    )
    adf = not request.url.path.startswith(f"{request.scope.get('root_path', '')}/bpm/")
    if adf and ADF_ERROR in request.headers.get("Accept", ""):
        body = {
            "title": HTTPStatus(exc.status).phrase,
            "status": str(exc.status),
            "o:errorDetails": [
                {
                    "detail": exc.detail,
                    "o:errorCode": exc.code or str(exc.status),
                    "o:errorPath": request.url.path,
                }
            ],
        }
        return JSONResponse(body, status_code=exc.status, headers=headers, media_type=ADF_ERROR)
    return PlainTextResponse(exc.detail, status_code=exc.status, headers=headers)


def fault_response(_request: Request, fault: Fault) -> Response:
    """The body of an injected fault: Fusion's gateways answer plain text."""
    return PlainTextResponse(HTTPStatus(fault.status).phrase, status_code=fault.status)


def int_param(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise OracleError(400, f"The query parameter {name} must be an integer.") from None
    return max(low, min(high, value))


def paged(
    items: Sequence[Any], request: Request, *, default_limit: int = 25
) -> tuple[list[Any], bool, int, int]:
    """Slice ``items`` by ``limit`` and ``offset``; return the page, hasMore, limit, offset."""
    limit = int_param(request, "limit", default_limit, low=1, high=500)
    offset = int_param(request, "offset", 0, low=0, high=10**9)
    page = list(items[offset : offset + limit])
    return page, offset + len(page) < len(items), limit, offset


def collection(
    request: Request,
    items: list[dict[str, Any]],
    *,
    has_more: bool,
    limit: int,
    offset: int,
    total: int,
) -> dict[str, Any]:
    """The ADF collection envelope."""
    body: dict[str, Any] = {
        "items": items,
        "count": len(items),
        "hasMore": has_more,
        "limit": limit,
        "offset": offset,
    }
    if request.query_params.get("totalResults") == "true":
        body["totalResults"] = total
    if not only_data(request):
        body["links"] = [
            {
                "rel": "self",
                "href": str(request.url),
                "name": request.url.path.rsplit("/", 1)[-1],
                "kind": "collection",
            }
        ]
    return body


def only_data(request: Request) -> bool:
    return request.query_params.get("onlyData") == "true"


def child_value(rows: list[dict[str, Any]], version: int, href: str) -> Any:
    """An expanded child: a bare array before version 3, a collection object from 3 on."""
    if version < 3:
        return rows
    return {
        "items": rows,
        "count": len(rows),
        "hasMore": False,
        "limit": 25,
        "offset": 0,
        "links": [
            {"rel": "self", "href": href, "name": href.rsplit("/", 1)[-1], "kind": "collection"}
        ],
    }


def item_links(href: str, name: str, children: Sequence[str] = ()) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = [
        {
            "rel": "self",
            "href": href,
            "name": name,
            "kind": "item",
            "properties": {
                "changeIndicator": "ACED0005737200136A6176612E7574696C2E41727261794C697374"
            },
        },
        {"rel": "canonical", "href": href, "name": name, "kind": "item"},
    ]
    links += [
        {"rel": "child", "href": f"{href}/child/{c}", "name": c, "kind": "collection"}
        for c in children
    ]
    return links


_EXPRESSION = re.compile(r"^\s*([A-Za-z][\w.]*)\s*=\s*('(?:[^']|'')*'|-?\d+)\s*$")


def parse_q(request: Request, version: int, allowed: set[str]) -> dict[str, str]:
    """Parse ``q``: query-by-example (``a=1;b=2``) in version 1, expressions from version 2."""
    raw = request.query_params.get("q")
    if not raw:
        return {}
    conditions: dict[str, str] = {}
    if version < 2:
        for part in raw.split(";"):
            name, sep, value = part.partition("=")
            if not sep:
                raise OracleError(
                    400, f"URL request parameter q with value {raw} is not valid.", code="27024"
                )
            conditions[name.strip()] = value.strip()
    else:
        for part in re.split(r"\s+and\s+", raw, flags=re.IGNORECASE):
            match = _EXPRESSION.match(part)
            if match is None:
                raise OracleError(
                    400, f"URL request parameter q with value {raw} is not valid.", code="27024"
                )
            name, value = match.groups()
            if value.startswith("'"):
                value = value[1:-1].replace("''", "'")
            conditions[name] = value
    unknown = set(conditions) - allowed
    if unknown:
        raise OracleError(
            400, f"The attribute {sorted(unknown)[0]} is not queryable.", code="25058"
        )
    return conditions


def expansions(request: Request, known: Mapping[str, Sequence[str]]) -> set[str]:
    """Return the expanded child paths (``all``, or a list where ``a.b`` implies ``a``)."""
    raw = request.query_params.get("expand")
    if not raw or request.query_params.get("fields"):
        return set()
    if raw.strip() == "all":
        return set(known)
    out: set[str] = set()
    for path in (p.strip() for p in raw.split(",") if p.strip()):
        if path not in known:
            raise OracleError(
                400, f"The child {path} is not valid for this resource.", code="27555"
            )
        parts = path.split(".")
        out.update(".".join(parts[: n + 1]) for n in range(len(parts)))
    return out
