"""deploy/prometheus/alerts.yml: well-formed rules over series that GET /metrics really exports."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from apscheduler.triggers.cron import CronTrigger
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from app.core.settings import SchedulerSettings
from tests.factories import Account
from tests.inbox_support import RunningSandbox
from tests.observability.walk import walk

SERIES = re.compile(r"\bworkflow_hub_[a-z0-9_]+\b")
DURATION = re.compile(r"^\d+[smhd]$")
REQUIRED = {
    "WorkflowHubDeadLetters",
    "WorkflowHubOutboxBacklog",
    "WorkflowHubTaskSyncStale",
    "WorkflowHubBreakerOpen",
}


def rules(project_root: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load((project_root / "deploy/prometheus/alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def test_every_rule_is_complete_and_the_essential_alerts_are_there(project_root: Path) -> None:
    found = rules(project_root)
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names)), names
    assert set(names) >= REQUIRED
    for rule in found:
        assert SERIES.search(rule["expr"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert DURATION.match(rule.get("for", "0s")), rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_thresholds_are_the_documented_ones(project_root: Path) -> None:
    by_name = {rule["alert"]: rule for rule in rules(project_root)}
    trigger = CronTrigger.from_crontab(SchedulerSettings().task_sweep_cron, timezone=UTC)
    first = trigger.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC))
    second = trigger.get_next_fire_time(first, first)
    assert first is not None
    assert second is not None
    period = (second - first).total_seconds()
    assert by_name["WorkflowHubTaskSyncStale"]["expr"].endswith(f"> {2 * period:.0f}")
    assert by_name["WorkflowHubOutboxBacklog"]["expr"].endswith("> 60")
    assert by_name["WorkflowHubDeadLetters"]["expr"].endswith("> 0")
    assert by_name["WorkflowHubBreakerOpen"]["expr"].endswith("== 2")


async def test_every_series_a_rule_names_is_exported_after_a_walk(
    app: FastAPI,
    client: httpx.AsyncClient,
    employee: Account,
    connected: RunningSandbox,
    project_root: Path,
) -> None:
    await walk(app, client, employee)
    response = await client.get("/metrics")
    exported = {
        sample.name
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    used = {name for rule in rules(project_root) for name in SERIES.findall(rule["expr"])}
    assert used, "no rule names a series"
    assert used <= exported, sorted(used - exported)
