"""Simulators of Oracle Fusion, Yardi and FCM for the demo, the tests and the benchmarks.

``create_app()`` mounts :func:`build_sandbox` under ``/sandbox`` when ``SANDBOX_ENABLED`` (never in
prod); ``python -m app sandbox --port N`` serves the same paths alone.
"""

from app.sandbox.app import Sandbox, build_sandbox, standalone_app
from app.sandbox.state import Fault, SandboxState

__all__ = ["Fault", "Sandbox", "SandboxState", "build_sandbox", "standalone_app"]
