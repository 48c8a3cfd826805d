"""Fixtures: the sandbox on a real loopback port, and integration clients built as in the app.

Each test gets a fresh sandbox (its state changes as tasks are decided), a fake clock that both
the sandbox (new tasks over time) and the breakers read, and a recorder in place of the retry
sleep, so that backoff and ``Retry-After`` are asserted without waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from app.core.settings import SandboxSettings
from app.integrations.oracle_fusion import JwtSigner, OracleFusionClient
from app.integrations.transport import BreakerRegistry, ResiliencePolicy, build_client
from app.integrations.yardi import YardiClient, YardiCredentials
from app.sandbox import SandboxState, build_sandbox
from app.sandbox.keys import demo_private_key_pem, public_key_of
from tests.loopback import Switch, ThreadedServer

PASSWORD = "sandbox-password"


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SleepRecorder:
    """Stands in for ``asyncio.sleep`` in the retry layer: records the waits, waits nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class RunningSandbox:
    url: str
    """``http://127.0.0.1:<port>/sandbox``."""
    state: SandboxState


@pytest.fixture(scope="session")
def demo_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The demo RSA key, generated once per run (file and PEM)."""
    path = tmp_path_factory.mktemp("keys") / "sandbox_jwt.pem"
    return path, demo_private_key_pem(path)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def sandbox_settings(demo_key: tuple[Path, str]) -> SandboxSettings:
    return SandboxSettings(
        users=50, seed=42, jwt_key_file=demo_key[0], new_task_interval_seconds=300
    )


@pytest.fixture(scope="session")
def loopback() -> Iterator[tuple[str, Switch]]:
    """One uvicorn server on a loopback port for the whole run; each test installs its app."""
    switch = Switch()
    server = ThreadedServer(switch)
    base = server.start()
    yield base, switch
    server.stop()


@pytest.fixture
def sandbox(
    loopback: tuple[str, Switch],
    sandbox_settings: SandboxSettings,
    demo_key: tuple[Path, str],
    clock: FakeClock,
) -> Iterator[RunningSandbox]:
    """A fresh sandbox, served over real HTTP on the same paths as ``python -m app sandbox``."""
    base, switch = loopback
    built = build_sandbox(sandbox_settings, public_key=public_key_of(demo_key[1]), clock=clock)
    switch.target = Starlette(routes=[Mount("/sandbox", built.app)])
    yield RunningSandbox(url=f"{base}/sandbox", state=built.state)
    switch.target = None


@pytest.fixture
def breakers(clock: FakeClock) -> Iterator[BreakerRegistry]:
    registry = BreakerRegistry(failure_threshold=3, reset_seconds=30, clock=clock)
    yield registry
    registry.close()  # its open breakers must not show in a later test's gauge


HttpFactory = Callable[..., httpx.AsyncClient]


@pytest.fixture
async def make_http(breakers: BreakerRegistry, sleeps: SleepRecorder) -> AsyncIterator[HttpFactory]:
    """Build an integration's resilient HTTP client (closed after the test)."""
    clients: list[httpx.AsyncClient] = []

    def make(integration: str = "oracle_fusion", **policy: Any) -> httpx.AsyncClient:
        policy.setdefault("timeout", httpx.Timeout(5.0))
        client = build_client(integration, ResiliencePolicy(**policy), breakers, sleep=sleeps)
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
def oracle(
    sandbox: RunningSandbox, make_http: HttpFactory, demo_key: tuple[Path, str]
) -> Callable[..., OracleFusionClient]:
    """Build an Oracle client against the sandbox: as ``user`` (JWT) or the integration account."""
    signer = JwtSigner(demo_key[1], issuer="workflow-hub-tests")
    shared = make_http()

    def make(
        user: str | None = None,
        *,
        version: int = 4,
        page_size: int = 25,
        tenant: str = "org-a",
        http: httpx.AsyncClient | None = None,
    ) -> OracleFusionClient:
        auth = signer.auth_for(user) if user else httpx.BasicAuth("integration", PASSWORD)
        return OracleFusionClient(
            http or shared,
            base_url=f"{sandbox.url}/oracle",
            auth=auth,
            framework_version=version,
            tenant=tenant,
            page_size=page_size,
        )

    return make


def yardi_credentials(**overrides: str) -> YardiCredentials:
    values = {
        "username": "integration",
        "password": PASSWORD,
        "server_name": "sandbox",
        "database": "sandbox_live",
        "interface_entity": "Workflow Hub",
        "interface_license": "SANDBOX-LICENSE",
    }
    values.update(overrides)
    return YardiCredentials(**values)


@pytest.fixture
def yardi(sandbox: RunningSandbox, make_http: HttpFactory) -> Callable[..., YardiClient]:
    shared = make_http("yardi")

    def make(http: httpx.AsyncClient | None = None, **overrides: str) -> YardiClient:
        return YardiClient(
            http or shared,
            base_url=f"{sandbox.url}/yardi",
            credentials=yardi_credentials(**overrides),
            tenant="org-a",
        )

    return make
