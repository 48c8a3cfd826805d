"""Settings: defaults, environment overrides and the production guard."""

from __future__ import annotations

import pytest

from app.core.settings import (
    INSECURE_ENCRYPTION_KEY,
    AppSettings,
    DatabaseSettings,
    Environment,
    InsecureSettingsError,
    SandboxSettings,
    SecuritySettings,
    Settings,
    ensure_safe,
)


def test_defaults_are_the_embedded_sqlite_dev_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DATABASE_URL", "APP_ENV", "PORT"):
        monkeypatch.delenv(name, raising=False)
    assert DatabaseSettings(_env_file=None).url.startswith("sqlite+aiosqlite:///var/")
    app = AppSettings(_env_file=None)
    assert app.env is Environment.DEV
    assert app.port == 8000
    assert app.json_logs is False


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("APP_ENV", "prod")
    app = AppSettings()
    assert app.port == 9123
    assert app.json_logs is True


def _prod(**overrides: object) -> Settings:
    security = SecuritySettings(jwt_secret="x" * 40, encryption_key="k" * 40)
    parts: dict[str, object] = {
        "app": AppSettings(env=Environment.PROD),
        "security": security,
        "sandbox": SandboxSettings(enabled=False),
    }
    parts.update(overrides)
    return Settings(**parts)  # type: ignore[arg-type]


def test_production_with_real_secrets_starts() -> None:
    ensure_safe(_prod())
    previous = SecuritySettings(
        jwt_secret="x" * 40,
        encryption_key="k" * 40,
        encryption_keys_previous="an-older-real-key",
    )
    ensure_safe(_prod(security=previous))


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"security": SecuritySettings(encryption_key="k" * 40)}, "AUTH_JWT_SECRET"),
        ({"security": SecuritySettings(jwt_secret="short", encryption_key="k" * 40)}, "shorter"),
        ({"security": SecuritySettings(jwt_secret="x" * 40)}, "AUTH_ENCRYPTION_KEY"),
        (
            {
                "security": SecuritySettings(
                    jwt_secret="x" * 40,
                    encryption_key="k" * 40,
                    encryption_keys_previous="old-key," + INSECURE_ENCRYPTION_KEY,
                )
            },
            "AUTH_ENCRYPTION_KEYS_PREVIOUS",
        ),
        ({"app": AppSettings(env=Environment.PROD, seed_demo=True)}, "APP_SEED_DEMO"),
        ({"sandbox": SandboxSettings(enabled=True)}, "SANDBOX_ENABLED"),
    ],
)
def test_production_refuses_insecure_defaults(override: dict[str, object], reason: str) -> None:
    with pytest.raises(InsecureSettingsError, match=reason):
        ensure_safe(_prod(**override))


def test_dev_tolerates_defaults() -> None:
    ensure_safe(Settings(app=AppSettings(env=Environment.DEV, seed_demo=True)))
