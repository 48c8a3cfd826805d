"""Every integration, resilience, sandbox and AUTH_ setting is in .env.example with its default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from app.core.settings import (
    FcmSettings,
    HttpSettings,
    OracleFusionSettings,
    SandboxSettings,
    SecuritySettings,
    YardiSettings,
)
from app.integrations.transport import policy_from_settings

CLASSES: list[type[BaseSettings]] = [
    HttpSettings,
    OracleFusionSettings,
    YardiSettings,
    FcmSettings,
    SandboxSettings,
    SecuritySettings,
]


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_documented_with_defaults(
    cls: type[BaseSettings], project_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name in list(os.environ):
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    example = project_root / ".env.example"
    text = example.read_text()
    for field in cls.model_fields:
        assert f"{prefix}{field.upper()}=" in text, f"{prefix}{field.upper()} is not documented"
    documented = cls(_env_file=example)
    defaults = cls(_env_file=None)
    assert documented.model_dump(mode="json") == defaults.model_dump(mode="json")


def test_integrations_override_the_http_defaults() -> None:
    http = HttpSettings(max_concurrency=20, read_timeout_seconds=30, rate_limit_per_second=5)
    oracle = OracleFusionSettings(
        max_concurrency=4, read_timeout_seconds=60, rate_limit_per_second=0
    )
    policy = policy_from_settings(
        http,
        max_concurrency=oracle.max_concurrency,
        rate_limit_per_second=oracle.rate_limit_per_second,
        read_timeout_seconds=oracle.read_timeout_seconds,
    )
    assert (policy.max_concurrency, policy.timeout.read, policy.rate_limit_per_second) == (4, 60, 0)
    inherited = policy_from_settings(http)
    assert (inherited.max_concurrency, inherited.timeout.read, inherited.rate_limit_per_second) == (
        20,
        30,
        5,
    )
    assert inherited.timeout.connect == http.connect_timeout_seconds


def test_the_sandbox_url_follows_the_api_address() -> None:
    from app.core.settings import AppSettings

    assert SandboxSettings().resolved_public_url(AppSettings(host="0.0.0.0", PORT=9000)) == (
        "http://127.0.0.1:9000/sandbox"
    )
    explicit = SandboxSettings(public_url="https://demo.example.com/sandbox/")
    assert explicit.resolved_public_url(AppSettings()) == "https://demo.example.com/sandbox"
    with pytest.raises(ValueError):
        SandboxSettings(error_rate=1.5)
