"""``python -m app sandbox --port N``: the sandbox alone, on the same paths as the mount."""

from __future__ import annotations

import uvicorn

from app.core.settings import Settings


def serve(settings: Settings, *, host: str, port: int) -> None:
    """Serve ``/sandbox/{oracle,yardi,fcm}`` until interrupted."""
    from app.sandbox.app import standalone_app

    uvicorn.run(
        standalone_app(settings.sandbox),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=5,
    )
