"""``open_runtime()``: what a process opens, and that modules publish only what they declare."""

from __future__ import annotations

import uuid

import pytest

from app.contracts.auth import UserLoggedOut
from app.contracts.user import UserCreated, UserSnapshot
from app.core.db import Database, get_database
from app.core.modules import ModuleSpec
from app.core.settings import Settings
from app.events import get_emitter, publish
from app.events import runtime as events_runtime
from app.events.runtime import UndeclaredPublication
from app.integrations.runtime import get_integrations
from app.registry import MODULES
from app.runtime import check_publishes, open_runtime

ORG = uuid.UUID(int=7)


async def test_open_runtime_installs_everything_and_removes_it_on_exit(
    settings: Settings, db: Database
) -> None:
    async with open_runtime(settings) as runtime:
        assert get_emitter() is runtime.emitter
        assert runtime.emitter.ready
        assert get_integrations() is runtime.integrations
        assert get_database() is runtime.database
        assert runtime.relay is None
    assert not runtime.emitter.ready
    with pytest.raises(RuntimeError, match="no application emitter"):
        get_emitter()
    with pytest.raises(RuntimeError, match="integrations are not open"):
        get_integrations()


async def test_open_runtime_starts_a_relay_only_when_asked(
    settings: Settings, db: Database
) -> None:
    async with open_runtime(settings, integrations=False, relay=True) as runtime:
        assert runtime.integrations is None
        assert runtime.relay is not None
        with pytest.raises(RuntimeError, match="integrations are not open"):
            get_integrations()


async def test_open_runtime_closes_what_it_opened_when_the_work_fails(
    settings: Settings, db: Database
) -> None:
    with pytest.raises(ZeroDivisionError):
        async with open_runtime(settings) as runtime:
            _ = 1 / 0
    assert not runtime.emitter.ready
    with pytest.raises(RuntimeError):
        get_emitter()


def test_every_module_lists_exactly_its_contracts() -> None:
    check_publishes(MODULES)
    user = next(spec for spec in MODULES if spec.name == "user")
    assert UserCreated in user.publishes


def test_a_module_listing_another_publishers_event_is_refused() -> None:
    thief = ModuleSpec(name="auth", publishes=(UserLoggedOut, UserCreated))
    with pytest.raises(UndeclaredPublication, match=r"'auth' lists events of other.*user\.created"):
        check_publishes([thief])


def test_a_module_leaving_out_one_of_its_events_is_refused() -> None:
    forgetful = ModuleSpec(name="auth", publishes=(UserLoggedOut,))
    with pytest.raises(UndeclaredPublication, match=r"'auth' does not list auth\.login"):
        check_publishes([forgetful])


async def test_publish_refuses_an_event_the_publishing_package_does_not_declare(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_runtime(settings, integrations=False):
        # This test module stands in for a module package that declares auth.logout only.
        monkeypatch.setitem(events_runtime._publishers, __name__, frozenset({UserLoggedOut.name}))
        user_id = uuid.uuid4()
        await publish(UserLoggedOut(organization_id=ORG, user_id=user_id, session_id=user_id))
        with pytest.raises(UndeclaredPublication, match=r"user\.created"):
            await publish(
                UserCreated(
                    organization_id=ORG,
                    user_id=user_id,
                    user=UserSnapshot(email="a@example.com", role="employee", user_type="EMPLOYEE"),
                )
            )
