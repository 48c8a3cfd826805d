"""Injected latency, errors, 429s and timeouts: random by rate (from the seed) or forced."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from starlette.types import Message

from app.core.settings import SandboxSettings
from app.sandbox import Fault, SandboxState
from app.sandbox.app import build_sandbox
from tests.integrations.conftest import RunningSandbox

TASKS = "/oracle/bpm/api/4.0/tasks"
AUTH = ("integration", "sandbox-password")


def _state(**settings: object) -> SandboxState:
    return SandboxState(SandboxSettings(**settings), public_key=None)  # type: ignore[arg-type]


def test_rates_draw_from_the_seed() -> None:
    a, b = _state(error_rate=0.3, seed=5), _state(error_rate=0.3, seed=5)
    draws_a = [a.next_fault("oracle") for _ in range(200)]
    draws_b = [b.next_fault("oracle") for _ in range(200)]
    assert [f.status if f else None for f in draws_a] == [f.status if f else None for f in draws_b]
    share = sum(1 for f in draws_a if f is not None) / 200
    assert 0.2 < share < 0.4


def test_each_kind_of_fault_by_rate() -> None:
    assert _state(rate_limit_rate=1, retry_after_seconds=4).next_fault("fcm") == Fault(
        429, retry_after=4
    )
    assert _state(error_rate=1).next_fault("yardi") == Fault(503)
    assert _state(timeout_rate=1, timeout_seconds=2).next_fault("oracle") == Fault(
        504, delay_seconds=2
    )
    assert _state().next_fault("oracle") is None


def test_forced_faults_come_first_and_run_out() -> None:
    state = _state(error_rate=0)
    state.inject("oracle", Fault(429, retry_after=1, times=2))
    state.inject("oracle", Fault(503))
    statuses = [f.status if f else None for f in (state.next_fault("oracle") for _ in range(5))]
    assert statuses == [429, 429, 503, None, None]
    assert state.next_fault("yardi") is None


async def test_faults_on_the_wire(sandbox: RunningSandbox) -> None:
    sandbox.state.settings = sandbox.state.settings.model_copy(
        update={"latency_ms": 40, "rate_limit_rate": 1.0, "retry_after_seconds": 3}
    )
    async with httpx.AsyncClient(auth=AUTH) as http:
        started = time.perf_counter()
        limited = await http.get(f"{sandbox.url}{TASKS}")
        assert time.perf_counter() - started >= 0.04
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "3")
        sandbox.state.settings = sandbox.state.settings.model_copy(
            update={"latency_ms": 0, "rate_limit_rate": 0.0, "error_rate": 1.0}
        )
        oracle = await http.get(f"{sandbox.url}{TASKS}")
        fcm = await http.post(f"{sandbox.url}/fcm/v1/projects/p/messages:send", json={})
        yardi = await http.post(
            f"{sandbox.url}/yardi/webservices/itfleasingapprovals.asmx", content=b""
        )
        sandbox.state.settings = sandbox.state.settings.model_copy(
            update={"error_rate": 0.0, "timeout_rate": 1.0, "timeout_seconds": 0.05}
        )
        timed_out = await http.get(f"{sandbox.url}{TASKS}")
    assert (oracle.status_code, oracle.text) == (503, "Service Unavailable")
    assert fcm.json()["error"]["status"] == "UNAVAILABLE"
    assert yardi.status_code == 500
    assert b"soap:Server" in yardi.content
    assert timed_out.status_code == 504
    assert sandbox.state.traffic["oracle"].requests == 3
    assert sandbox.state.traffic["oracle"].in_flight == 0


async def test_rates_change_over_http_per_system_and_stop_with_the_faults(
    sandbox: RunningSandbox,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=AUTH) as http:
        changed = await http.put(
            "/faults/rates", json={"system": "oracle", "rate_limit_rate": 1, "retry_after": 2}
        )
        assert changed.status_code == 200, changed.text
        assert changed.json()["rate_limit_rate"] == 1.0
        limited = await http.get(TASKS)
        assert (limited.status_code, limited.headers["Retry-After"]) == (429, "2")
        yardi = await http.get("/faults/rates")
        assert yardi.json()["yardi"]["rate_limit_rate"] == 0.0
        for bad in (
            {"system": "oracle", "error_rate": 1.5},
            {"system": "oracle", "error_rate": 0.6, "timeout_rate": 0.6},
            {"system": "mainframe", "error_rate": 0.1},
            {"system": "oracle", "retry_after": -1},
        ):
            assert (await http.put("/faults/rates", json=bad)).status_code == 400, bad
        assert (await http.delete("/faults")).status_code == 204
        assert (await http.get(TASKS)).status_code == 200


async def test_the_ledger_names_retries_that_came_before_their_retry_after(
    sandbox: RunningSandbox,
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.url, auth=AUTH) as http:
        await http.post("/faults", json={"system": "oracle", "status": 429, "retry_after": 1})
        await http.post("/faults", json={"system": "oracle", "status": 429, "retry_after": 1})
        await http.get(TASKS, headers={"X-Request-ID": "patient"})
        await http.get(TASKS, headers={"X-Request-ID": "eager"})
        await http.get(TASKS, headers={"X-Request-ID": "eager"})  # at once: too soon
        await asyncio.sleep(1.05)
        await http.get(TASKS, headers={"X-Request-ID": "patient"})
        ledger = (await http.get("/faults/retry-after")).json()
    assert ledger["limited"] == 2
    assert ledger["honoured"] == 1
    assert [e["request_id"] for e in ledger["early"]] == ["eager"]
    assert 0.5 < ledger["early"][0]["early_by"] <= 1


async def test_a_retried_call_keeps_its_request_id(sandbox: RunningSandbox) -> None:
    from app.integrations.transport import BreakerRegistry, ResiliencePolicy
    from app.integrations.transport.resilient import ResilientTransport

    sandbox.state.inject("oracle", Fault(429, retry_after=0))
    transport = ResilientTransport(
        httpx.AsyncHTTPTransport(),
        integration="oracle_fusion",
        policy=ResiliencePolicy(),
        breakers=BreakerRegistry(failure_threshold=5, reset_seconds=30),
    )
    async with httpx.AsyncClient(transport=transport, auth=AUTH) as http:
        answered = await http.get(f"{sandbox.url}{TASKS}")
    assert answered.status_code == 200
    ledger = sandbox.state.retry_after
    assert (ledger.limited, ledger.honoured, ledger.early) == (1, 1, [])


async def test_a_caller_gone_before_its_body_is_counted_not_raised(tmp_path: Path) -> None:
    # A worker killed -9 mid-call leaves the simulator reading a body that never comes: that
    # is the caller's end, not a bug of the simulator (no traceback in its log).
    sandbox = build_sandbox(SandboxSettings(jwt_key_file=tmp_path / "key.pem"))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/yardi/webservices/ItfLeasingApprovals.asmx",
        "raw_path": b"/yardi/webservices/ItfLeasingApprovals.asmx",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"text/xml"), (b"content-length", b"400")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await sandbox.app(scope, receive, send)

    traffic = sandbox.state.traffic["yardi"]
    assert (traffic.requests, traffic.disconnected, traffic.in_flight) == (1, 1, 0)
