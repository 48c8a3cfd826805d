"""The sandbox tests share the integration tests' fixtures (loopback server, sandbox, clock)."""

from tests.integrations.conftest import (  # noqa: F401
    FakeClock,
    RunningSandbox,
    clock,
    demo_key,
    loopback,
    sandbox,
    sandbox_settings,
)
