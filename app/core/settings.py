"""Settings, one pydantic-settings class per concern, each read through a cached getter.

Every setting is documented in `.env.example` with its default. Nothing reads the environment at
import time: call the getters (or :func:`get_settings`) and clear the cache in tests with
:func:`reset_settings`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

INSECURE_JWT_SECRET = "dev-insecure-jwt-secret-change-me"
INSECURE_ENCRYPTION_KEY = "dev-insecure-encryption-key-change-me"

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class Environment(StrEnum):
    DEV = "dev"
    TEST = "test"
    PROD = "prod"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )


class AppSettings(BaseSettings):
    """Process-wide behaviour: environment, HTTP server, logging, demo data."""

    model_config = _config("APP_")

    env: Environment = Environment.DEV
    name: str = "Workflow Hub"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, validation_alias="PORT")
    log_level: str = "INFO"
    log_json: bool | None = None
    """JSON log lines; defaults to on in prod and off elsewhere."""
    seed_demo: bool = False
    """Seed the demo organisation at start (``make run`` turns it on). Refused in prod."""

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env is Environment.PROD


class DatabaseSettings(BaseSettings):
    """The one relational database: SQLite (embedded default) or PostgreSQL."""

    model_config = _config("DATABASE_")

    url: str = "sqlite+aiosqlite:///var/workflow_hub.db"
    echo: bool = False
    pool_size: int = 10
    max_overflow: int = 10
    sqlite_busy_timeout_ms: int = 30_000

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class SecuritySettings(BaseSettings):
    """Tokens, password policy, login throttling and secret encryption."""

    model_config = _config("AUTH_")

    jwt_secret: SecretStr = SecretStr(INSECURE_JWT_SECRET)
    jwt_algorithm: str = "HS256"
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    login_max_failures: int = 5
    login_window_seconds: int = 60
    login_address_max_failures: int = Field(default=5, ge=1)
    """Failed logins from one client address within the window before it gets 429."""
    argon2_time_cost: int = Field(default=3, ge=1)
    """argon2id passes (RFC 9106 low-memory profile; ``APP_ENV=test`` uses minimal costs)."""
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    encryption_key: SecretStr = SecretStr(INSECURE_ENCRYPTION_KEY)
    """Key for secrets stored in the database (integration credentials)."""


class UserSettings(BaseSettings):
    """The user module: admin-triggered profile resyncs."""

    model_config = _config("USER_")

    resync_page_size: int = Field(default=200, ge=1, le=5000)
    """Users read per page when an organisation is resynced (never the whole table at once)."""
    resync_concurrency: int = Field(default=8, ge=1)
    """Profile syncs of one resync that run at once."""


class EventsSettings(BaseSettings):
    """The emitter, its background tasks and the durable relay."""

    model_config = _config("EVENTS_")

    strict: bool = True
    max_listeners: int = 50
    drain_timeout_seconds: float = 10.0
    relay_enabled: bool = True
    """Run the durable relay inside the API process (or run ``python -m app worker``)."""
    relay_concurrency: int = Field(default=8, ge=1)
    """Durable deliveries one process runs at once (each holds a database connection)."""
    relay_batch_size: int = Field(default=50, ge=1)
    """The most deliveries one claim takes."""
    relay_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a claimed delivery stays reserved; a dead worker's deliveries return after it."""
    relay_heartbeat_seconds: float = Field(default=15.0, gt=0)
    """How often a relay extends the leases it holds and rescues expired ones."""
    relay_poll_min_seconds: float = Field(default=0.2, gt=0)
    """The first idle poll interval; it doubles while idle, up to the maximum."""
    relay_poll_max_seconds: float = Field(default=5.0, gt=0)
    """The longest idle poll interval (LISTEN/NOTIFY wakes PostgreSQL relays sooner)."""
    relay_shutdown_timeout_seconds: float = Field(default=25.0, ge=0)
    """On SIGTERM, how long running deliveries may finish before they are released."""
    retention_days: float = Field(default=7.0, gt=0)
    """How long delivered events are kept (dedupe window and replay history)."""
    prune_interval_seconds: float = Field(default=3600.0, ge=0)
    """How often a relay prunes history older than the retention (0: never)."""
    extra_listeners: str = ""
    """Comma-separated ``module:attribute`` listeners (or lists of them) to subscribe beside
    the modules' own, for tests and benchmarks. Refused in prod."""

    @model_validator(mode="after")
    def _check_relay(self) -> EventsSettings:
        if self.relay_heartbeat_seconds >= self.relay_lease_seconds:
            raise ValueError("EVENTS_RELAY_HEARTBEAT_SECONDS must be below the lease")
        if self.relay_poll_max_seconds < self.relay_poll_min_seconds:
            raise ValueError("EVENTS_RELAY_POLL_MAX_SECONDS is below the minimum")
        return self


class SchedulerSettings(BaseSettings):
    """APScheduler: whether this process runs the crons."""

    model_config = _config("SCHEDULER_")

    enabled: bool = True


class SandboxSettings(BaseSettings):
    """The simulators of Oracle Fusion, Yardi and FCM (dev and test only)."""

    model_config = _config("SANDBOX_")

    enabled: bool = False
    """Mount the sandbox beside the API under /sandbox/*. Refused in prod."""


class Settings:
    """All settings of one process, grouped by concern."""

    def __init__(
        self,
        *,
        app: AppSettings | None = None,
        database: DatabaseSettings | None = None,
        security: SecuritySettings | None = None,
        events: EventsSettings | None = None,
        scheduler: SchedulerSettings | None = None,
        sandbox: SandboxSettings | None = None,
        users: UserSettings | None = None,
    ) -> None:
        self.app = app or AppSettings()
        self.database = database or DatabaseSettings()
        self.security = security or SecuritySettings()
        self.events = events or EventsSettings()
        self.scheduler = scheduler or SchedulerSettings()
        self.sandbox = sandbox or SandboxSettings()
        self.users = users or UserSettings()

    def insecure_for_production(self) -> list[str]:
        """Return the reasons these settings must not run in production (empty when safe)."""
        if self.app.env is not Environment.PROD:
            return []
        problems = []
        if self.security.jwt_secret.get_secret_value() == INSECURE_JWT_SECRET:
            problems.append("AUTH_JWT_SECRET is the insecure default")
        if len(self.security.jwt_secret.get_secret_value()) < 32:
            problems.append("AUTH_JWT_SECRET is shorter than 32 characters")
        if self.security.encryption_key.get_secret_value() == INSECURE_ENCRYPTION_KEY:
            problems.append("AUTH_ENCRYPTION_KEY is the insecure default")
        if self.app.seed_demo:
            problems.append("APP_SEED_DEMO is on")
        if self.sandbox.enabled:
            problems.append("SANDBOX_ENABLED is on")
        if self.events.extra_listeners:
            problems.append("EVENTS_EXTRA_LISTENERS is set")
        return problems


class InsecureSettingsError(RuntimeError):
    """Raised when production would start with a development default."""


def ensure_safe(settings: Settings) -> None:
    """Refuse to start in prod with insecure defaults."""
    problems = settings.insecure_for_production()
    if problems:
        raise InsecureSettingsError("refusing to start with APP_ENV=prod: " + "; ".join(problems))


@lru_cache
def get_settings() -> Settings:
    """Return the process settings (cached; see :func:`reset_settings`)."""
    return Settings()


def reset_settings() -> None:
    """Forget cached settings so the next read sees the current environment."""
    get_settings.cache_clear()
