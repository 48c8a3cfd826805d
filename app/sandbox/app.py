"""The sandbox as one ASGI app: ``/oracle``, ``/yardi`` and ``/fcm`` over one shared state."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from app.core.settings import SandboxSettings
from app.sandbox.control import control_routes
from app.sandbox.fcm import build_fcm
from app.sandbox.keys import demo_private_key_pem, public_key_of
from app.sandbox.oracle import build_oracle
from app.sandbox.state import Clock, SandboxState
from app.sandbox.yardi import build_yardi


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox: the ASGI app to mount under ``/sandbox`` and its state."""

    app: Starlette
    state: SandboxState


def build_sandbox(
    settings: SandboxSettings,
    *,
    public_key: RSAPublicKey | None = None,
    clock: Clock | None = None,
) -> Sandbox:
    """Build the simulators of Oracle Fusion, Yardi and FCM from ``settings``.

    The Oracle simulator verifies bearer JWTs with ``public_key``, by default the public half of
    the demo key in ``SANDBOX_JWT_KEY_FILE`` (created when missing).
    """
    if public_key is None:
        public_key = public_key_of(demo_private_key_pem(settings.jwt_key_file))
    state = SandboxState(settings, public_key=public_key, **({"clock": clock} if clock else {}))

    async def index(_request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "systems": ["oracle", "yardi", "fcm"],
                "users": settings.users,
                "seed": settings.seed,
                "generations": state.generations(),
            }
        )

    app = Starlette(
        routes=[
            Route("/", index),
            *control_routes(),
            Mount("/oracle", build_oracle(state)),
            Mount("/yardi", build_yardi(state)),
            Mount("/fcm", build_fcm(state)),
        ]
    )
    app.state.sandbox = state
    return Sandbox(app=app, state=state)


def standalone_app(settings: SandboxSettings) -> Starlette:
    """The sandbox alone, serving the same ``/sandbox/...`` paths as the mount."""
    sandbox = build_sandbox(settings)
    app = Starlette(routes=[Mount("/sandbox", sandbox.app)])
    app.state.sandbox = sandbox.state
    return app
