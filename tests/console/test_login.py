"""Logging in to the console: admins only, an HTTP-only SameSite=Strict cookie, CSRF on the form."""

from __future__ import annotations

from fastapi import FastAPI

from app.console.security import SESSION_COOKIE, issue_session_token
from app.core.security import decode_access_token
from app.core.settings import Settings
from tests.console.support import browser, console_login, csrf_of, post_form
from tests.factories import Account

PAGES = (
    "/console",
    "/console/overview/live",
    "/console/deliveries",
    "/console/events",
    "/console/integrations",
    "/console/sandbox",
    "/console/jobs",
    "/console/jobs/task_sweep",
)


async def test_an_admin_logs_in_with_email_and_password_and_gets_a_strict_cookie(
    app: FastAPI, admin: Account
) -> None:
    async with browser(app) as client:
        response = await console_login(client, admin)
        assert response.status_code == 303
        assert response.headers["location"] == "/console"
        cookie = next(
            header
            for header in response.headers.get_list("set-cookie")
            if header.startswith(f"{SESSION_COOKIE}=")
        )
        attributes = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "samesite=strict", "path=/console"} <= attributes
        overview = await client.get("/console")
        assert overview.status_code == 200
        assert "Dead letters" in overview.text


async def test_a_wrong_password_or_a_missing_token_never_opens_a_session(
    app: FastAPI, admin: Account
) -> None:
    async with browser(app) as client:
        form = await client.get("/console/login")
        wrong = await client.post(
            "/console/login",
            data={"email": admin.email, "password": "nope", "csrf_token": csrf_of(form)},
        )
        assert wrong.status_code == 401
        assert "The email or password is wrong." in wrong.text
        assert SESSION_COOKIE not in client.cookies
        no_token = await client.post(
            "/console/login", data={"email": admin.email, "password": admin.password}
        )
        assert no_token.status_code == 403
        assert "The form expired" in no_token.text
        forged = await client.post(
            "/console/login",
            data={"email": admin.email, "password": admin.password, "csrf_token": "0" * 64},
        )
        assert forged.status_code == 403
        assert SESSION_COOKIE not in client.cookies
        assert (await client.get("/console")).status_code == 303


async def test_an_employee_cannot_log_in_and_sees_nothing_with_a_session(
    app: FastAPI, employee: Account, settings: Settings
) -> None:
    async with browser(app) as client:
        refused = await console_login(client, employee)
        assert refused.status_code == 403
        assert "The console is for organisation admins." in refused.text
        assert SESSION_COOKIE not in client.cookies
        # Even with a valid console token for their live session, every page is 403.
        principal = decode_access_token(settings.security, employee.access_token)
        token = issue_session_token(settings.security, principal)
        client.cookies.set(SESSION_COOKIE, token)
        for page in (*PAGES, "/console/deliveries/1", "/console/deliveries/1/retry"):
            response = await client.get(page)
            assert response.status_code == 403, page
            assert "admin_required" in response.text
            assert "Dead letters" not in response.text
        for action in (
            "/console/deliveries/1/retry",
            "/console/integrations/yardi/test",
            "/console/jobs/task_sweep/run",
        ):
            posted = await client.post(action, data={"csrf_token": "x"})
            assert posted.status_code == 403, action


async def test_without_a_session_pages_redirect_to_the_login_form(app: FastAPI) -> None:
    async with browser(app) as client:
        for page in PAGES[:1] + PAGES[2:]:
            response = await client.get(page, params={"offset": "0"})
            assert response.status_code == 303, page
            assert response.headers["location"].startswith("/console/login?next=%2Fconsole")
        fragment = await client.get("/console/overview/live", headers={"X-Console-Fragment": "1"})
        assert fragment.status_code == 401
        posted = await client.post("/console/deliveries/1/retry", data={"csrf_token": "x"})
        assert (posted.status_code, posted.headers["location"]) == (303, "/console/login")
        client.cookies.set(SESSION_COOKIE, "forged")
        assert (await client.get("/console")).status_code == 303


async def test_login_returns_to_the_page_asked_for_but_never_off_site(
    app: FastAPI, admin: Account
) -> None:
    async with browser(app) as client:
        for asked, landed in (
            ("/console/events", "/console/events"),
            ("//evil.example/console", "/console"),
            ("https://evil.example/", "/console"),
            ("/console//evil.example", "/console"),
        ):
            form = await client.get("/console/login", params={"next": asked})
            assert 'name="next"' in form.text
            response = await client.post(
                "/console/login",
                data={
                    "email": admin.email,
                    "password": admin.password,
                    "csrf_token": csrf_of(form),
                    "next": asked,
                },
            )
            assert response.headers["location"] == landed, asked


async def test_logging_out_ends_the_auth_session(app: FastAPI, admin: Account) -> None:
    async with browser(app) as client:
        await console_login(client, admin)
        kept = client.cookies[SESSION_COOKIE]
        refused = await client.post("/console/logout", data={"csrf_token": "wrong"})
        assert refused.status_code == 403
        assert "csrf_refused" in refused.text
        out = await post_form(client, "/console", "/console/logout")
        assert (out.status_code, out.headers["location"]) == (303, "/console/login")
        assert SESSION_COOKIE not in client.cookies
        # The old cookie names a revoked session now.
        client.cookies.set(SESSION_COOKIE, kept)
        assert (await client.get("/console")).status_code == 303


async def test_a_login_throttled_by_the_auth_module_says_so(
    app: FastAPI, admin: Account, settings: Settings
) -> None:
    async with browser(app) as client:
        form = await client.get("/console/login")
        token = csrf_of(form)
        statuses = []
        for _ in range(settings.security.login_max_failures + 1):
            response = await client.post(
                "/console/login",
                data={"email": admin.email, "password": "wrong", "csrf_token": token},
            )
            statuses.append(response.status_code)
        assert statuses[-1] == 429
        assert "retry later" in response.text.lower()
