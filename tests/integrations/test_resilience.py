"""Resilience over real HTTP against the sandbox: retries, Retry-After, idempotency, the breaker
per integration and organisation, timeouts, and the concurrency limit under 200 calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from app.integrations.errors import NotFoundError, RateLimitedError, UnavailableError
from app.integrations.oracle_fusion import OracleFusionClient
from app.integrations.transport import BreakerRegistry, BreakerState, ResiliencePolicy, build_client
from app.integrations.transport.wire import MAX_RETRY_AFTER_SECONDS, parse_retry_after
from app.integrations.yardi import YardiClient
from app.sandbox import Fault
from tests.integrations.conftest import FakeClock, RunningSandbox, SleepRecorder

Oracle = Callable[..., OracleFusionClient]
Http = Callable[..., httpx.AsyncClient]
EMMA = "EMMA.EMPLOYEE"


def oracle_requests(sandbox: RunningSandbox) -> int:
    return sandbox.state.traffic["oracle"].requests


async def test_a_read_is_retried_on_503_with_jittered_backoff(
    oracle: Oracle, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    sandbox.state.inject("oracle", Fault(503, times=2))
    tasks = await oracle(EMMA).list_tasks()
    assert len(tasks) == 4
    assert oracle_requests(sandbox) == 3
    assert len(sleeps.waits) == 2
    assert 0 <= sleeps.waits[0] <= 0.5
    assert 0 <= sleeps.waits[1] <= 1.0


async def test_retry_after_is_honoured(
    oracle: Oracle, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    sandbox.state.inject("oracle", Fault(429, retry_after=2))
    worker = await oracle().get_worker(person_number="100003")
    assert worker.display_name == "Olivia Brown"
    assert sleeps.waits == [2.0]


async def test_a_retry_after_beyond_the_limit_goes_back_to_the_caller(
    oracle: Oracle, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    sandbox.state.inject("oracle", Fault(429, retry_after=120))
    with pytest.raises(RateLimitedError) as caught:
        await oracle().get_worker(person_number="100003")
    assert caught.value.retry_after == 120
    assert sleeps.waits == []
    assert oracle_requests(sandbox) == 1


async def test_retries_give_up_with_the_last_answer(
    oracle: Oracle, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    sandbox.state.inject("oracle", Fault(503, times=5))
    with pytest.raises(UnavailableError) as caught:
        await oracle(EMMA, tenant="org-retry").list_tasks()
    assert caught.value.status == 503
    assert oracle_requests(sandbox) == 3
    assert len(sleeps.waits) == 2


async def test_an_action_is_never_resent(
    oracle: Oracle, sandbox: RunningSandbox, sleeps: SleepRecorder
) -> None:
    client = oracle(EMMA)
    task = await client.get_task((await client.list_tasks())[0].number)
    before = oracle_requests(sandbox)
    sandbox.state.inject("oracle", Fault(503))
    with pytest.raises(UnavailableError):
        await client.act_on_task(task.number, action="APPROVE", task=task)
    assert oracle_requests(sandbox) - before == 1
    assert sleeps.waits == []
    sandbox.state.inject("oracle", Fault(429, retry_after=1))
    with pytest.raises(RateLimitedError):
        await client.act_on_task(task.number, action="APPROVE", task=task)
    assert oracle_requests(sandbox) - before == 2
    assert sleeps.waits == []
    assert (await client.get_task(task.number)).state == "ASSIGNED"


class Scripted(httpx.AsyncBaseTransport):
    """A stand-in remote that answers from a script and counts what it was sent."""

    def __init__(self, *answers: int | type[Exception]) -> None:
        self.answers = list(answers)
        self.seen: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        answer = self.answers.pop(0) if self.answers else 200
        if isinstance(answer, type):
            raise answer("scripted failure", request=request)  # type: ignore[call-arg]
        return httpx.Response(answer, request=request)


def _client(
    transport: Scripted, breakers: BreakerRegistry, sleeps: SleepRecorder
) -> httpx.AsyncClient:
    return build_client(
        "scripted", ResiliencePolicy(attempts=3), breakers, transport=transport, sleep=sleeps
    )


async def test_an_idempotency_key_makes_an_action_retryable(
    breakers: BreakerRegistry, sleeps: SleepRecorder
) -> None:
    remote = Scripted(503, 200)
    async with _client(remote, breakers, sleeps) as http:
        response = await http.post("http://remote/act", headers={"Idempotency-Key": "k1"})
    assert response.status_code == 200
    assert len(remote.seen) == 2
    remote = Scripted(503, 200)
    async with _client(remote, breakers, sleeps) as http:
        response = await http.post("http://remote/act")
    assert response.status_code == 503
    assert len(remote.seen) == 1


async def test_a_read_can_be_marked_idempotent_and_an_unsent_call_is_always_retried(
    breakers: BreakerRegistry, sleeps: SleepRecorder
) -> None:
    remote = Scripted(httpx.ReadTimeout, 200)
    async with _client(remote, breakers, sleeps) as http:
        response = await http.post(
            "http://remote/read", extensions={"workflow_hub.idempotent": True}
        )
    assert response.status_code == 200
    assert len(remote.seen) == 2
    remote = Scripted(httpx.ReadTimeout)
    async with _client(remote, breakers, sleeps) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.post("http://remote/act")
    assert len(remote.seen) == 1
    remote = Scripted(httpx.ConnectError, 200)  # never reached the server: safe for any call
    async with _client(remote, breakers, sleeps) as http:
        assert (await http.post("http://remote/act")).status_code == 200
    assert len(remote.seen) == 2


async def test_a_refused_connection_becomes_unavailable(
    make_http: Http, sleeps: SleepRecorder
) -> None:
    client = OracleFusionClient(
        make_http(),
        base_url="http://127.0.0.1:9",  # discard port: nothing listens
        auth=httpx.BasicAuth("integration", "sandbox-password"),
        tenant="org-down",
    )
    with pytest.raises(UnavailableError, match="ConnectError"):
        await client.get_task(1)
    assert len(sleeps.waits) == 2


async def test_a_timeout_becomes_unavailable_after_retries(
    oracle: Oracle, sandbox: RunningSandbox, make_http: Http
) -> None:
    sandbox.state.inject("oracle", Fault(504, delay_seconds=0.5, times=3))
    http = make_http(timeout=httpx.Timeout(5.0, read=0.05), attempts=2)
    started = time.perf_counter()
    with pytest.raises(UnavailableError, match="timed out"):
        await oracle(EMMA, http=http).list_tasks()
    assert time.perf_counter() - started < 0.5
    assert oracle_requests(sandbox) == 2


async def test_the_breaker_opens_per_organisation_and_closes_after_a_probe(
    oracle: Oracle,
    sandbox: RunningSandbox,
    make_http: Http,
    breakers: BreakerRegistry,
    clock: FakeClock,
) -> None:
    http = make_http(attempts=1)
    acme, globex = oracle(EMMA, http=http, tenant="acme"), oracle(EMMA, http=http, tenant="globex")
    sandbox.state.inject("oracle", Fault(503, times=3))
    for _ in range(3):
        with pytest.raises(UnavailableError):
            await acme.list_tasks()
    assert breakers.get("oracle_fusion", "acme").state is BreakerState.OPEN
    sent = oracle_requests(sandbox)
    with pytest.raises(UnavailableError, match="circuit open") as caught:
        await acme.list_tasks()
    assert caught.value.retry_after == pytest.approx(30)
    assert oracle_requests(sandbox) == sent  # rejected without a call
    assert len(await globex.list_tasks()) == 4  # another organisation is unaffected

    clock.advance(31)
    sandbox.state.inject("oracle", Fault(503))
    with pytest.raises(UnavailableError):
        await acme.list_tasks()  # the half-open probe fails: open again
    assert breakers.get("oracle_fusion", "acme").state is BreakerState.OPEN
    with pytest.raises(UnavailableError, match="circuit open"):
        await acme.list_tasks()
    clock.advance(31)
    assert len(await acme.list_tasks()) == 4  # the probe succeeds: closed
    assert breakers.get("oracle_fusion", "acme").state is BreakerState.CLOSED


async def test_the_breaker_keeps_its_latest_failures_without_query_strings(
    oracle: Oracle, sandbox: RunningSandbox, make_http: Http, breakers: BreakerRegistry
) -> None:
    http = make_http(attempts=1)
    client = oracle(EMMA, http=http, tenant="acme")
    assert breakers.recent_failures("oracle_fusion", "acme") == []
    sandbox.state.inject("oracle", Fault(503, times=12))
    for _ in range(2):
        with pytest.raises(UnavailableError):
            await client.list_tasks()
    before = time.time()
    with pytest.raises(UnavailableError):
        await client.get_worker(person_number="100003")
    newest, *older = breakers.recent_failures("oracle_fusion", "acme")
    assert (
        newest.reason == "HTTP 503 on GET /sandbox/oracle/hcmRestApi/resources/11.13.18.05/workers"
    )
    assert newest.at >= before
    assert [f.reason for f in older] == ["HTTP 503 on GET /sandbox/oracle/bpm/api/4.0/tasks"] * 2
    assert breakers.recent_failures("oracle_fusion", "globex") == []
    for _ in range(9):  # the breaker is open now: rejected calls are not failures of the system
        with pytest.raises(UnavailableError):
            await client.list_tasks()
    assert len(breakers.recent_failures("oracle_fusion", "acme")) == 3


def test_a_breaker_keeps_only_its_ten_latest_failures(clock: FakeClock) -> None:
    registry = BreakerRegistry(failure_threshold=100, reset_seconds=10, clock=clock)
    breaker = registry.get("yardi", "acme")
    for n in range(12):
        breaker.record_failure(f"failure {n}")
    breaker.record_success()  # closing keeps the history
    reasons = [f.reason for f in registry.recent_failures("yardi", "acme")]
    assert reasons == [f"failure {n}" for n in range(11, 1, -1)]


async def test_client_errors_do_not_open_the_breaker(
    oracle: Oracle, make_http: Http, breakers: BreakerRegistry
) -> None:
    http = make_http(attempts=1)
    client = oracle("OLIVIA.BROWN", http=http, tenant="acme")
    for _ in range(5):
        with pytest.raises(NotFoundError):
            await client.get_task(100004)
    assert breakers.get("oracle_fusion", "acme").state is BreakerState.CLOSED


def test_the_half_open_breaker_lets_one_probe_through(clock: FakeClock) -> None:
    breaker = BreakerRegistry(failure_threshold=1, reset_seconds=10, clock=clock).get("x", "t")
    breaker.before_call()
    breaker.record_failure()
    clock.advance(10)
    breaker.before_call()  # the probe
    probing = breaker.state
    with pytest.raises(Exception, match="circuit open"):
        breaker.before_call()  # a second caller waits for the probe's outcome
    breaker.record_success()
    breaker.before_call()
    assert (probing, breaker.state) == (BreakerState.HALF_OPEN, BreakerState.CLOSED)


async def test_the_concurrency_limit_holds_under_200_concurrent_calls(
    oracle: Oracle, sandbox: RunningSandbox, make_http: Http
) -> None:
    sandbox.state.settings = sandbox.state.settings.model_copy(update={"latency_ms": 10})
    http = make_http(max_concurrency=8)
    client = oracle(EMMA, http=http)
    number = (await client.list_tasks())[0].number
    sandbox.state.traffic["oracle"].peak_in_flight = 0
    results = await asyncio.gather(*(client.get_task(number) for _ in range(200)))
    assert {r.number for r in results} == {number}
    assert sandbox.state.traffic["oracle"].peak_in_flight == 8


async def test_the_rate_limit_spaces_calls(oracle: Oracle, make_http: Http) -> None:
    http = make_http(rate_limit_per_second=40)
    client = oracle(EMMA, http=http)
    started = time.perf_counter()
    await asyncio.gather(*(client.get_task(100004) for _ in range(60)))
    assert time.perf_counter() - started >= 0.4  # 40 at once, then 20 more at 40 per second


def test_rates_below_one_per_second_are_spaced_not_refused() -> None:
    from app.integrations.transport.resilient import _limiter

    assert _limiter(0) is None
    slow = _limiter(0.5)
    assert slow is not None
    assert slow.max_rate == 1
    assert slow.time_period == 2.0
    fast = _limiter(40)
    assert fast is not None
    assert (fast.max_rate, fast.time_period) == (40, 1.0)


def test_retry_after_headers_parse_to_a_bounded_wait() -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after("Wed, 25 Nov 2026 12:01:00 GMT", now=now) == 60
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now=now) == 0  # in the past
    assert parse_retry_after("9" * 400, now=now) == MAX_RETRY_AFTER_SECONDS  # not inf
    assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=now) == MAX_RETRY_AFTER_SECONDS
    for garbage in ("", "  ", "soon", "\uff11\uff12", "-5", None):
        assert parse_retry_after(garbage, now=now) is None, garbage


async def test_every_client_names_a_call_that_got_no_answer_the_same_way(
    oracle: Oracle,
    yardi: Callable[..., YardiClient],
    sandbox: RunningSandbox,
    make_http: Http,
) -> None:
    for name in ("oracle", "yardi"):
        sandbox.state.inject(name, Fault(504, delay_seconds=0.5, times=1))
    tight = httpx.Timeout(5.0, read=0.05)
    with pytest.raises(UnavailableError, match=r"^oracle_fusion: timed out \(ReadTimeout\)$"):
        await oracle(EMMA, http=make_http(timeout=tight, attempts=1)).list_tasks()
    with pytest.raises(UnavailableError, match=r"^yardi: timed out \(ReadTimeout\)$"):
        await yardi(http=make_http("yardi", timeout=tight, attempts=1)).pending_approvals(
            approver=EMMA
        )
