"""Crontab expressions and time zones, checked once with the setting that holds them."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger


class InvalidSchedule(ValueError):
    """A cron expression or time zone that does not parse; the message names the setting."""


def check_timezone(setting: str, name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``.

    Raises:
        InvalidSchedule: the zone is unknown (the message names ``setting``).
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"{setting}: {name!r} is not a known time zone") from None


def check_crontab(setting: str, expression: str, timezone: str = "UTC") -> CronTrigger:
    """Return the trigger of a crontab expression read in ``timezone``.

    Five fields (minute hour day month day-of-week), or six with a leading field of seconds
    (``*/2 * * * * *``: every two seconds), for demos and tests that cannot wait minutes.

    Raises:
        InvalidSchedule: the expression or the zone does not parse (the message names
            ``setting``).
    """
    zone = check_timezone("SCHEDULER_TIMEZONE", timezone)
    try:
        fields = expression.split()
        if len(fields) == 6:
            second, minute, hour, day, month, day_of_week = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=day_of_week,
                timezone=zone,
            )
        return CronTrigger.from_crontab(expression, timezone=zone)
    except (ValueError, TypeError) as exc:
        raise InvalidSchedule(
            f"{setting}: {expression!r} is not a crontab expression "
            f"([second] minute hour day month day-of-week): {exc}"
        ) from None
