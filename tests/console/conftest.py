from tests.factories import admin, employee, org
from tests.integrations.conftest import clock, demo_key, loopback, sandbox, sandbox_settings
from tests.scheduler.conftest import no_relay, task_syncs

__all__ = [
    "admin",
    "clock",
    "demo_key",
    "employee",
    "loopback",
    "no_relay",
    "org",
    "sandbox",
    "sandbox_settings",
    "task_syncs",
]
