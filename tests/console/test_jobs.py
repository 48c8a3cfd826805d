"""The console's jobs: cron and next run, run one now, watch its progress to the end."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI

from app.scheduler import service
from tests.console.support import browser, console_login, csrf_of
from tests.factories import Account, settle
from tests.scheduler.conftest import TaskSyncs


@pytest.mark.usefixtures("no_relay")
async def test_an_admin_runs_the_task_sweep_and_watches_it_finish(
    app: FastAPI, admin: Account, employee: Account, task_syncs: TaskSyncs
) -> None:
    async with browser(app) as client:
        await console_login(client, admin)
        listed = await client.get("/console/jobs")
        assert listed.status_code == 200
        assert 'id="job-task_sweep"' in listed.text
        assert 'id="job-profile_sync"' in listed.text
        assert "<code>*/5 * * * *</code>" in listed.text
        assert "SCHEDULER_TASK_SWEEP_CRON" in listed.text
        token = csrf_of(listed)

        refused = await client.post("/console/jobs/task_sweep/run")
        assert refused.status_code == 403
        started = await client.post("/console/jobs/task_sweep/run", data={"csrf_token": token})
        assert (started.status_code, started.headers["location"]) == (
            303,
            "/console/jobs/task_sweep",
        )
        running = await client.get("/console/jobs/task_sweep")
        assert '<span class="pill running">running</span>' in running.text
        assert 'data-refresh-url="/console/jobs/task_sweep/live"' in running.text
        assert "data-refresh-stop" not in running.text
        again = await client.post("/console/jobs/task_sweep/run", data={"csrf_token": token})
        assert again.status_code == 409
        assert "job_running" in again.text

        await settle(app)
        await service.reconcile()
        live = await client.get(
            "/console/jobs/task_sweep/live", headers={"X-Console-Fragment": "1"}
        )
        assert live.status_code == 200
        assert "<html" not in live.text
        assert '<span class="pill succeeded">succeeded</span>' in live.text
        assert "data-refresh-stop" in live.text  # the page stops refreshing
        assert re.search(r'<progress value="2" max="2"></progress> 2/2', live.text)
        assert sorted(task_syncs.seen) == sorted([admin.user_id, employee.user_id])

        overview = await client.get("/console")
        assert 'href="/console/jobs/task_sweep">task_sweep</a>' in overview.text
        assert '<span class="pill succeeded">succeeded</span>' in overview.text


async def test_an_unknown_job_is_404(app: FastAPI, admin: Account) -> None:
    async with browser(app) as client:
        await console_login(client, admin)
        token = csrf_of(await client.get("/console/jobs"))
        for method, path in (
            ("GET", "/console/jobs/nope"),
            ("GET", "/console/jobs/nope/live"),
            ("POST", "/console/jobs/nope/run"),
        ):
            response = await client.request(method, path, data={"csrf_token": token})
            assert response.status_code == 404, path
            assert "job_not_found" in response.text
