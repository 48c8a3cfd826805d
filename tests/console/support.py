"""Helpers of the console tests: a browser-like client per user, forms and their CSRF tokens."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from tests.factories import Account

CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@asynccontextmanager
async def browser(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar, like one browser."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token of the page's forms."""
    match = CSRF.search(page.text)
    assert match is not None, page.text
    assert match.group(1), page.text
    return match.group(1)


async def console_login(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    """Log in through the console's form, as a browser would."""
    form = await client.get("/console/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/console/login",
        data={"email": account.email, "password": account.password, "csrf_token": csrf_of(form)},
    )


async def post_form(
    client: httpx.AsyncClient, page: str, action: str, **fields: str
) -> httpx.Response:
    """Open ``page`` and post one of its forms to ``action`` with the page's CSRF token."""
    opened = await client.get(page)
    assert opened.status_code == 200, opened.text
    return await client.post(action, data={"csrf_token": csrf_of(opened), **fields})
