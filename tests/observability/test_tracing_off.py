"""Tracing is off unless asked for, and the app runs without the [otel] extra."""

from __future__ import annotations

import sys

import pytest

from app.core import tracing as core_tracing
from app.core.settings import Settings
from app.events import tracing as event_tracing
from app.runtime import start_tracing


def test_without_an_endpoint_nothing_is_traced(
    monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    monkeypatch.delenv(core_tracing.ENDPOINT, raising=False)
    assert not start_tracing(settings)
    assert not event_tracing.enabled()


def test_without_the_extra_an_endpoint_only_logs_that_tracing_is_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, settings: Settings
) -> None:
    monkeypatch.setenv(core_tracing.ENDPOINT, "http://127.0.0.1:9")
    monkeypatch.setattr(core_tracing, "_installed", False)
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace", None)  # not installed
    assert not start_tracing(settings)
    assert not event_tracing.enabled()
    assert "the [otel] extra is not installed: tracing is off" in caplog.text
