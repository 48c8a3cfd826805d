"""Settings, one pydantic-settings class per concern, each read through a cached getter.

Every setting is documented in `.env.example` with its default. Nothing reads the environment at
import time: call the getters (or :func:`get_settings`) and clear the cache in tests with
:func:`reset_settings`.
"""

from __future__ import annotations

import fnmatch
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
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
    forwarded_allow_ips: str = Field(default="127.0.0.1", validation_alias="FORWARDED_ALLOW_IPS")
    """Proxies whose X-Forwarded-* headers uvicorn trusts (comma-separated, or ``*``)."""
    seed_demo: bool = False
    """Seed the demo organisation at start (``make run`` turns it on). Refused in prod."""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body accepted; a larger one is 413 ``payload_too_large``."""
    max_auth_body_bytes: int = Field(default=16 * 1024, ge=1024)
    """Largest body of the login and token routes, which anyone may call."""
    http_max_header_bytes: int = Field(default=16 * 1024, ge=4096)
    """Largest request line plus headers uvicorn reads; beyond it, it answers 400 itself."""
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    """How long an idle keep-alive connection stays open."""
    http_max_concurrency: int | None = Field(default=None, ge=1)
    """Connections plus requests in flight before uvicorn answers 503 itself (None: no cap)."""
    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Where ``python -m app worker`` and ``scheduler`` serve ``GET /metrics`` (on ``APP_HOST``;
    None: they serve none). The API serves it on its own port."""

    @property
    def json_logs(self) -> bool:
        return self.log_json if self.log_json is not None else self.env is Environment.PROD


class DatabaseSettings(BaseSettings):
    """The one relational database: SQLite (embedded default) or PostgreSQL."""

    model_config = _config("DATABASE_")

    url: str = "sqlite+aiosqlite:///var/workflow_hub.db"
    echo: bool = False
    pool_size: int = Field(default=10, ge=1)
    """Connections kept open (PostgreSQL and a file SQLite database alike)."""
    max_overflow: int = Field(default=10, ge=0)
    """Connections opened beyond ``pool_size`` under load, closed when returned."""
    pool_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a request waits for a free connection before it answers 503 ``database_busy``."""
    pool_pre_ping: bool = True
    """Check each pooled PostgreSQL connection before use; costs round trips on every checkout."""
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
    login_address_max_failures: int = Field(default=50, ge=1)
    """Failed logins from one client address within the window before it gets 429. Sized for
    many people behind one address (an office's NAT): the per-email limit protects each account,
    this one slows a single address spraying guesses over many emails (docs/errors.md)."""
    argon2_time_cost: int = Field(default=3, ge=1)
    """argon2id passes (RFC 9106 low-memory profile; ``APP_ENV=test`` uses minimal costs)."""
    argon2_memory_cost_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)
    encryption_key: SecretStr = SecretStr(INSECURE_ENCRYPTION_KEY)
    """Key for secrets stored in the database (integration credentials): it seals every secret
    written, and opens them."""
    encryption_keys_previous: SecretStr = SecretStr("")
    """Comma-separated keys that sealed secrets before ``encryption_key`` (newest first): they
    only open secrets, never seal them. Keep one here until ``python -m app integration
    rotate-key`` has re-sealed everything under the current key."""

    def previous_encryption_keys(self) -> list[SecretStr]:
        """Return the previous keys, in order, without blanks or the current key."""
        current = self.encryption_key.get_secret_value()
        keys: list[SecretStr] = []
        for part in self.encryption_keys_previous.get_secret_value().split(","):
            key = part.strip()
            if key and key != current and all(k.get_secret_value() != key for k in keys):
                keys.append(SecretStr(key))
        return keys


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
    relay_batch_size: int = Field(default=16, ge=1)
    """Deliveries a relay claims ahead of those it runs, so that one claim serves many."""
    relay_pool_size: int | None = Field(default=None, ge=1)
    """The running relay's own PostgreSQL pool (``relay_concurrency + 3`` when unset). A
    delivery holds a connection only while its transaction runs SQL, so listeners that mostly
    wait on a source (the inbox syncs) need fewer connections than deliveries at once."""
    relay_lease_seconds: float = Field(default=60.0, gt=0)
    """How long a claimed delivery stays reserved; a dead worker's deliveries return after it."""
    relay_heartbeat_seconds: float = Field(default=15.0, gt=0)
    """How often a relay rescues expired leases and refreshes the outbox gauges; it renews the
    leases it holds this often too, and at least every third of the lease (on a thread and a
    connection of their own)."""
    relay_poll_min_seconds: float = Field(default=0.2, gt=0)
    """The first idle poll interval; it doubles while idle, up to the maximum."""
    relay_poll_max_seconds: float = Field(default=5.0, gt=0)
    """The longest idle poll interval (LISTEN/NOTIFY wakes PostgreSQL relays sooner)."""
    relay_shutdown_timeout_seconds: float = Field(default=25.0, ge=0)
    """On SIGTERM, how long running deliveries may finish before they are released."""
    retention_days: float = Field(default=7.0, gt=0, le=36_500)
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
    """The scheduler: whether this process runs the crons, when they fire, how runs fan out."""

    model_config = _config("SCHEDULER_")

    enabled: bool = True
    """Run the crons in this process (``serve``); ``python -m app scheduler`` runs them alone."""
    timezone: str = "UTC"
    """The IANA time zone the crons are read in (``Europe/Paris``)."""
    task_sweep_cron: str = "*/5 * * * *"
    """The user module's task sweep: ``user.sync.task.notifications`` per active user."""
    profile_sync_cron: str = "0 6 * * fri"
    """The user module's profile sync: ``user.syncProfile`` per active EMPLOYEE."""
    misfire_grace_seconds: float = Field(default=60.0, ge=0)
    """A tick that starts later than this after its time is recorded as ``missed``, not run."""
    page_size: int = Field(default=500, ge=1, le=5000)
    """Users read, and their events written, per transaction of a run's fan-out."""
    reconcile_seconds: float = Field(default=2.0, gt=0)
    """How often the scheduler checks whether a run's deliveries are done, to finish it."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from app.core.crontab import check_timezone

        check_timezone("SCHEDULER_TIMEZONE", value)
        return value

    @field_validator("task_sweep_cron", "profile_sync_cron")
    @classmethod
    def _cron(cls, value: str, info: ValidationInfo) -> str:
        # The message names the setting; the scheduler parses every job's cron the same way.
        from app.core.crontab import check_crontab

        check_crontab(f"SCHEDULER_{str(info.field_name).upper()}", value)
        return value


class SandboxSettings(BaseSettings):
    """The simulators of Oracle Fusion, Yardi and FCM (dev and test only)."""

    model_config = _config("SANDBOX_")

    enabled: bool = False
    """Mount the sandbox beside the API under /sandbox/*. Refused in prod."""
    public_url: str | None = None
    """Where the sandbox answers (no trailing slash); defaults to the API's own address
    (``http://APP_HOST:PORT/sandbox``). The demo organisation's integrations point here."""
    seed: int = 42
    """Seed of the deterministic data set: the same seed always gives the same people and tasks."""
    users: int = Field(default=50, ge=1, le=1_000_000)
    """People in the data set, each with a manager chain and pending tasks in every system."""
    latency_ms: float = Field(default=0.0, ge=0)
    """Added to every answer."""
    latency_jitter_ms: float = Field(default=0.0, ge=0)
    """Random extra latency, uniform between 0 and this."""
    error_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of requests answered 503 (Oracle, FCM) or with a SOAP server fault (Yardi)."""
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of requests answered 429 with ``Retry-After``."""
    retry_after_seconds: int = Field(default=1, ge=0)
    """The ``Retry-After`` of injected 429s."""
    timeout_rate: float = Field(default=0.0, ge=0, le=1)
    """Share of requests that hang for ``SANDBOX_TIMEOUT_SECONDS`` before answering 504."""
    timeout_seconds: float = Field(default=30.0, ge=0)
    new_task_interval_seconds: float = Field(default=300.0, ge=0)
    """Every interval, a share of the people get a new pending task (0: the set never grows)."""
    task_lifetime_generations: int = Field(default=24, ge=1)
    """How many intervals a task that appeared after the start stays pending if nobody acts on
    it; then it expires (BPM state ``EXPIRED``, Yardi status ``Expired``). The base inbox of
    generation 0 never expires, so pending tasks stay bounded however long the sandbox runs."""
    password: SecretStr = SecretStr("sandbox-password")
    """The password of the ``integration`` account and of every sandbox user."""
    jwt_key_file: Path = Path("var/sandbox_oracle_jwt.pem")
    """The demo organisation's RSA key for Oracle bearer JWTs (created on first use). The
    sandbox verifies tokens with its public half."""

    def resolved_public_url(self, app: AppSettings) -> str:
        """Return the sandbox's base URL, derived from the API's bind address when unset."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if app.host in ("0.0.0.0", "::", "") else app.host
        return f"http://{host}:{app.port}/sandbox"


class HttpSettings(BaseSettings):
    """Resilience defaults of every integration's HTTP client; each integration may override."""

    model_config = _config("HTTP_")

    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=30.0, gt=0)
    write_timeout_seconds: float = Field(default=30.0, gt=0)
    pool_timeout_seconds: float = Field(default=10.0, gt=0)
    """How long a call waits for a free connection of the integration's pool."""
    retry_attempts: int = Field(default=3, ge=1, le=10)
    """Attempts of an idempotent call (1: no retry). A non-idempotent call without an
    idempotency key is sent once, unless the connection never opened."""
    retry_backoff_seconds: float = Field(default=0.5, ge=0)
    """The first retry's backoff ceiling; it doubles per attempt, with full jitter."""
    retry_backoff_max_seconds: float = Field(default=10.0, ge=0)
    retry_after_max_seconds: float = Field(default=30.0, ge=0)
    """The longest ``Retry-After`` waited for; a longer one is handed back to the caller."""
    breaker_failure_threshold: int = Field(default=5, ge=1)
    """Consecutive failures (5xx, timeouts, connection errors) that open an organisation's
    breaker for an integration."""
    breaker_reset_seconds: float = Field(default=30.0, gt=0)
    """How long an open breaker rejects calls before it lets one probe through."""
    max_concurrency: int = Field(default=20, ge=1)
    """Calls in flight at once per integration, across organisations."""
    rate_limit_per_second: float = Field(default=0.0, ge=0)
    """Calls started per second per integration (0: no rate limit, only the concurrency)."""
    connection_recheck_seconds: float = Field(default=1.0, ge=0)
    """How long an organisation's opened connection (secrets decrypted) is reused before its
    stored version is read again (0: on every call). A change made through this process is
    seen at once; one made through another process within this time."""
    allowed_hosts: str = ""
    """Comma-separated host patterns an organisation's base URL may name (``*.oraclecloud.com``,
    ``yardi.internal.example``); empty allows any. Set it in prod, so that an admin cannot
    point the server's requests at an internal address."""

    def allows_host(self, host: str) -> bool:
        """Whether ``allowed_hosts`` lets a base URL name ``host`` (case-insensitive)."""
        patterns = [p.strip().lower() for p in self.allowed_hosts.split(",") if p.strip()]
        return not patterns or any(fnmatch.fnmatchcase(host.lower(), p) for p in patterns)


class OracleFusionSettings(BaseSettings):
    """The Oracle Fusion client (HCM, BPM worklist, procurement); connections are per org."""

    model_config = _config("ORACLE_FUSION_")

    max_concurrency: int | None = Field(default=None, ge=1)
    """Overrides ``HTTP_MAX_CONCURRENCY`` for Oracle Fusion."""
    rate_limit_per_second: float | None = Field(default=None, ge=0)
    """Overrides ``HTTP_RATE_LIMIT_PER_SECOND`` for Oracle Fusion."""
    read_timeout_seconds: float | None = Field(default=60.0, gt=0)
    """BPM actions can be slow; overrides ``HTTP_READ_TIMEOUT_SECONDS``."""
    page_size: int = Field(default=25, ge=1, le=500)
    """Items per page when following ``hasMore``."""
    max_pages: int = Field(default=200, ge=1)
    """Pages one listing may follow before it stops with an error (a runaway guard)."""
    jwt_ttl_seconds: int = Field(default=300, ge=30, le=3600)
    """Lifetime of the per-user bearer JWTs the client signs."""


class YardiSettings(BaseSettings):
    """The Yardi SOAP client; connections are per organisation."""

    model_config = _config("YARDI_")

    max_concurrency: int | None = Field(default=None, ge=1)
    """Overrides ``HTTP_MAX_CONCURRENCY`` for Yardi."""
    rate_limit_per_second: float | None = Field(default=None, ge=0)
    """Overrides ``HTTP_RATE_LIMIT_PER_SECOND`` for Yardi."""
    read_timeout_seconds: float | None = Field(default=None, gt=0)
    """Overrides ``HTTP_READ_TIMEOUT_SECONDS`` for Yardi."""
    max_response_bytes: int = Field(default=5_000_000, ge=1024)
    """Larger SOAP answers are refused before they are parsed."""


class FcmSettings(BaseSettings):
    """Push through firebase-admin: the real FCM, the sandbox's fake FCM, or the log."""

    model_config = _config("FCM_")

    provider: str = Field(default="auto", pattern="^(auto|log|fcm|sandbox)$")
    """``fcm`` (needs ``FCM_CREDENTIALS_FILE``), ``sandbox`` (firebase-admin against the
    sandbox's fake FCM), ``log`` (log and drop), or ``auto``: fcm with credentials, sandbox when
    the sandbox is enabled, else log."""
    credentials_file: Path | None = None
    """A service-account JSON file."""
    project_id: str | None = None
    """The Firebase project; taken from the credentials when unset (``sandbox-project`` for
    the sandbox)."""
    sandbox_url: str | None = None
    """The fake FCM's base URL; defaults to the sandbox's public URL plus ``/fcm``."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_concurrency: int = Field(default=4, ge=1)
    """Batches (of up to 500 messages) sent at once."""
    dry_run: bool = False
    """Validate messages without delivering them (``validate_only``)."""


class NotificationSettings(BaseSettings):
    """The notification module: summary pushes, topics and retention."""

    model_config = _config("NOTIFICATIONS_")

    summary_window_seconds: float = Field(default=30.0, ge=0, le=3600)
    """Tasks that reach one user within this window share one push ("3 new approvals")."""
    retention_days: int = Field(default=90, ge=1, le=36_500)
    """Notifications older than this are pruned by the ``notification.prune`` job."""
    prune_cron: str = "40 3 * * *"
    """When the pruning job runs (crontab, five fields)."""
    broadcast_topic_prefix: str = Field(default="org-", pattern=r"^[a-zA-Z0-9-_.~%]*$")
    """Every device is subscribed to ``<prefix><organisation id>``, its organisation's topic."""


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
        http: HttpSettings | None = None,
        oracle_fusion: OracleFusionSettings | None = None,
        yardi: YardiSettings | None = None,
        fcm: FcmSettings | None = None,
        notifications: NotificationSettings | None = None,
    ) -> None:
        self.app = app or AppSettings()
        self.database = database or DatabaseSettings()
        self.security = security or SecuritySettings()
        self.events = events or EventsSettings()
        self.scheduler = scheduler or SchedulerSettings()
        self.sandbox = sandbox or SandboxSettings()
        self.users = users or UserSettings()
        self.http = http or HttpSettings()
        self.oracle_fusion = oracle_fusion or OracleFusionSettings()
        self.yardi = yardi or YardiSettings()
        self.fcm = fcm or FcmSettings()
        self.notifications = notifications or NotificationSettings()

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
        # The default is published: secrets it opens are as good as plain text, and anyone could
        # forge one. A database still sealed with it is re-sealed outside prod (see README).
        previous = self.security.previous_encryption_keys()
        if any(key.get_secret_value() == INSECURE_ENCRYPTION_KEY for key in previous):
            problems.append("AUTH_ENCRYPTION_KEYS_PREVIOUS holds the insecure default")
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
