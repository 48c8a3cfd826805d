"""Typed event contracts, one file per publishing module: the only thing modules share."""

from __future__ import annotations

import importlib
import pkgutil


def load_all() -> None:
    """Import every contract module, so the strict emitter knows every declared event."""
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
