"""The operations console: server-rendered pages at /console for organisation admins.

Where it sits: like ``app/main.py`` and ``app/cli.py``, the console is a surface ABOVE the
modules. It calls the same public service functions the admin API and the CLI call (the
outbox service, the emitter's catalog, the connections service, the auth module's login), and it
owns no table and no query of its own. Nothing below imports it: import-linter's contracts keep
core, events, contracts, integrations and the modules from reaching up into it, and keep it
from reaching into a module's repository, models or router.

:func:`install_console` is the one call ``create_app()`` makes.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.console.errors import install_console_errors
from app.console.router import router
from app.console.views import STATIC_DIR

__all__ = ["install_console"]


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and static files on ``app`` and render its errors as pages.

    Call it after the application's own error handlers are installed.
    """
    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    install_console_errors(app)
