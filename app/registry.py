"""The one list of modules. ``create_app()`` mounts their routers, listeners, jobs and seeds."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from app.core.modules import ModuleSpec
from app.modules.auth.module import module as auth
from app.modules.hr.module import module as hr
from app.modules.leasing.module import module as leasing
from app.modules.notification.module import module as notification
from app.modules.procurement.module import module as procurement
from app.modules.user.module import module as user

MODULES: Sequence[ModuleSpec] = (auth, user, notification, procurement, hr, leasing)

CORE_MODELS: Sequence[str] = (
    "app.core.tenancy",
    "app.events.outbox.models",
    "app.integrations.connections.models",
    "app.scheduler.models",
)
"""Packages outside the modules that define tables."""


def load_all_models() -> None:
    """Import every table definition so that ``Base.metadata`` is complete (for alembic)."""
    for name in CORE_MODELS:
        importlib.import_module(name)
    for spec in MODULES:
        try:
            importlib.import_module(f"app.modules.{spec.name}.models")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.modules.{spec.name}.models":
                raise
