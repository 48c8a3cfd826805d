"""Structured logging: JSON lines in prod, readable lines in dev, a correlation id in each."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.core.context import correlation_id_var
from app.core.logging import configure_logging
from app.core.settings import AppSettings, Environment


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def _emit(capsys: pytest.CaptureFixture[str], message: str) -> str:
    token = correlation_id_var.set("corr-123")
    try:
        logging.getLogger("app.test").warning(message)
    finally:
        correlation_id_var.reset(token)
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_prod_logs_are_json_with_the_correlation_id(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging(AppSettings(env=Environment.PROD))
    line = json.loads(_emit(capsys, "hello json"))
    assert line["message"] == "hello json"
    assert line["level"] == "WARNING"
    assert line["logger"] == "app.test"
    assert line["correlation_id"] == "corr-123"


def test_dev_logs_are_readable_with_the_correlation_id(
    capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    configure_logging(AppSettings(env=Environment.DEV))
    line = _emit(capsys, "hello dev")
    assert "[corr-123]" in line
    assert line.endswith("hello dev")
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_configuring_twice_keeps_one_handler(restore_logging: None) -> None:
    configure_logging(AppSettings())
    configure_logging(AppSettings())
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_workflow_hub", False)]
    assert len(ours) == 1
