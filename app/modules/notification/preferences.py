"""Push preferences: push on or off per module, and quiet hours in the user's time zone."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from app.modules.notification import repository
from app.modules.notification.models import Preference
from app.modules.notification.quiet import QuietHours
from app.modules.notification.schemas import MODULES, Preferences, PushPreferences, QuietHoursIn


def push_enabled(preference: Preference | None, module: str) -> bool:
    """Whether the user wants pushes for ``module`` (on unless they turned it off)."""
    if preference is None:
        return True
    return bool(getattr(preference, f"push_{module}", True))


def enabled_modules(preference: Preference | None) -> set[str]:
    """The modules the user wants pushes for."""
    return {m for m in MODULES if push_enabled(preference, m)}


def quiet_hours_of(preference: Preference | None) -> QuietHours | None:
    """The user's quiet hours, if they set any."""
    if preference is None or not (
        preference.quiet_start and preference.quiet_end and preference.time_zone
    ):
        return None
    return QuietHours.parse(preference.quiet_start, preference.quiet_end, preference.time_zone)


async def get_preferences(session: AsyncSession, *, user_id: uuid.UUID) -> Preferences:
    """Return the user's preferences (the defaults when they never set any)."""
    return _preferences_out(await repository.get_preference(session, user_id))


async def set_preferences(
    session: AsyncSession,
    *,
    organization_id: uuid.UUID,
    user_id: uuid.UUID,
    wanted: Preferences,
) -> Preferences:
    """Replace the user's preferences."""
    row = await repository.get_preference(session, user_id)
    if row is None:
        row = Preference(user_id=user_id, organization_id=organization_id)
        session.add(row)
    row.push_procurement = wanted.push.procurement
    row.push_hr = wanted.push.hr
    row.push_leasing = wanted.push.leasing
    quiet = wanted.quiet_hours
    row.quiet_start = quiet.start if quiet else None
    row.quiet_end = quiet.end if quiet else None
    row.time_zone = quiet.time_zone if quiet else None
    await session.flush()
    return _preferences_out(row)


def _preferences_out(row: Preference | None) -> Preferences:
    if row is None:
        return Preferences()
    quiet = None
    if row.quiet_start and row.quiet_end and row.time_zone:
        quiet = QuietHoursIn(start=row.quiet_start, end=row.quiet_end, time_zone=row.time_zone)
    return Preferences(
        push=PushPreferences(
            procurement=row.push_procurement, hr=row.push_hr, leasing=row.push_leasing
        ),
        quiet_hours=quiet,
    )
