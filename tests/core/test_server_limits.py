"""What uvicorn answers by itself, before the app: plain text, never problem+json.

``python -m app serve`` runs with the options of :func:`app.cli.server_options`; these requests
never reach the app, so they carry no ``X-Request-ID`` and no problem body (docs/errors.md).
"""

from __future__ import annotations

import asyncio
import select
import socket
from collections.abc import AsyncIterator

import pytest
import uvicorn

from app.cli import server_options
from app.core.settings import Settings
from app.main import create_app


@pytest.fixture
async def server(settings: Settings, db: object) -> AsyncIterator[int]:
    """The app served by uvicorn with the production options, on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    options = {**server_options(settings), "host": "127.0.0.1", "port": port}
    options["log_level"] = "critical"
    config = uvicorn.Config(create_app(settings), **options)
    instance = uvicorn.Server(config)
    task = asyncio.create_task(instance.serve())
    while not instance.started:
        await asyncio.sleep(0.05)
    try:
        yield port
    finally:
        instance.should_exit = True
        await task


async def _raw(port: int, request: bytes) -> bytes:
    return await asyncio.to_thread(_exchange, port, request)


def _exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` in pieces, as a network delivers it; stop once the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for start in range(0, len(request), 32 * 1024):
            sock.sendall(request[start : start + 32 * 1024])
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                break
        chunks = []
        while chunk := sock.recv(65536):  # every exchange here ends with the server closing
            chunks.append(chunk)
        return b"".join(chunks)


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def test_the_app_answers_a_normal_request_with_a_correlation_id(server: int) -> None:
    answer = await _raw(server, b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert _status(answer) == 200
    assert b"x-request-id" in answer.lower()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Nul: a\x00b\r\n\r\n",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n{}",
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["200kb-request-line", "100kb-header", "nul-in-header", "bad-length", "broken-chunks"],
)
async def test_uvicorn_refuses_broken_requests_itself_in_plain_text(
    server: int, request_bytes: bytes
) -> None:
    answer = await _raw(server, request_bytes)
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert _status(answer) in (400, 431), answer[:200]
    assert b"content-type: text/plain" in head
    assert b"x-request-id" not in head  # the app never saw it
