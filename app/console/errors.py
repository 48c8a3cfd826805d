"""Errors under /console are pages, not problem+json: the same statuses, rendered as HTML.

:func:`install_console_errors` wraps the application's handlers: a request under /console gets
an HTML page with the error's status and message (a missing session redirects to the login
form), any other request keeps its problem+json answer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.console.security import SESSION_COOKIE, ConsoleLoginRequired, clear_cookie
from app.console.views import SECURITY_HEADERS, render
from app.core.errors import AppError

Handler = Callable[[Request, Exception], Response | Awaitable[Response]]

PREFIX = "/console"


def is_console(request: Request) -> bool:
    """Whether the request is for a console page."""
    path = request.url.path
    return path == PREFIX or path.startswith(PREFIX + "/")


def _login_redirect(request: Request) -> Response:
    """Send the browser to the login form, back to this page afterwards (GET only)."""
    target = f"{PREFIX}/login"
    if request.method == "GET" and not request.headers.get("X-Console-Fragment"):
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += f"?next={quote(here, safe='')}"
    if request.headers.get("X-Console-Fragment"):
        # The page's refresh script: a 401 makes it reload, and the reload redirects.
        response: Response = Response(status_code=401)
    else:
        response = RedirectResponse(target, status_code=303)
    clear_cookie(response, SESSION_COOKIE)
    response.headers.update(SECURITY_HEADERS)
    return response


def _page(request: Request, status: int, code: str, detail: str) -> Response:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    admin = getattr(request.state, "console_principal", None)
    return render(
        request,
        "error.html",
        status_code=status,
        admin=admin,
        title=title,
        status=status,
        code=code,
        detail=detail,
    )


def install_console_errors(app: FastAPI) -> None:
    """Render errors of console requests as HTML pages; leave every other answer as it was."""
    previous = dict(app.exception_handlers)

    def wrap(kind: type[Exception]) -> Handler:
        fallback = previous[kind]

        async def handle(request: Request, exc: Exception) -> Response:
            if not is_console(request):
                answer = fallback(request, exc)
                response: Response = await answer if isinstance(answer, Awaitable) else answer
                return response
            if isinstance(exc, ConsoleLoginRequired):
                return _login_redirect(request)
            if isinstance(exc, AppError):
                page = _page(request, exc.status, exc.code, exc.detail)
                page.headers.update(exc.headers)
                return page
            if isinstance(exc, RequestValidationError):
                fields = ", ".join(
                    ".".join(str(part) for part in error.get("loc", ())) for error in exc.errors()
                )
                return _page(request, 422, "validation_error", f"Invalid input: {fields}.")
            assert isinstance(exc, StarletteHTTPException)
            detail = exc.detail if isinstance(exc.detail, str) else ""
            if exc.status_code == 404 and detail == "Not Found":
                detail = "No console page has this address."
            return _page(request, exc.status_code, "http_error", detail)

        return handle

    for kind in (AppError, StarletteHTTPException, RequestValidationError):
        app.add_exception_handler(kind, wrap(kind))
