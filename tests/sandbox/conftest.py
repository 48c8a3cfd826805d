"""The sandbox tests share the integration tests' fixtures (loopback server, sandbox, clock,
and the clients built as in the app)."""

from tests.integrations.conftest import (  # noqa: F401
    FakeClock,
    RunningSandbox,
    breakers,
    clock,
    demo_key,
    loopback,
    make_http,
    oracle,
    sandbox,
    sandbox_settings,
    sleeps,
    yardi,
)
