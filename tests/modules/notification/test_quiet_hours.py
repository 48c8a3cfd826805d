"""Quiet hours in the user's time zone: inside or not, and when they end (DST included)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.modules.notification.quiet import QuietHours

NIGHT = QuietHours.parse("22:00", "07:00", "Europe/Paris")
LUNCH = QuietHours.parse("12:00", "13:30", "America/New_York")


@pytest.mark.parametrize(
    ("hours", "instant", "inside"),
    [
        (NIGHT, datetime(2026, 6, 1, 19, 59, tzinfo=UTC), False),  # 21:59 in Paris (CEST)
        (NIGHT, datetime(2026, 6, 1, 20, 0, tzinfo=UTC), True),  # 22:00
        (NIGHT, datetime(2026, 6, 2, 4, 59, tzinfo=UTC), True),  # 06:59
        (NIGHT, datetime(2026, 6, 2, 5, 0, tzinfo=UTC), False),  # 07:00: the end is open
        (NIGHT, datetime(2026, 1, 15, 21, 30, tzinfo=UTC), True),  # 22:30 in Paris (CET)
        (LUNCH, datetime(2026, 1, 15, 17, 0, tzinfo=UTC), True),  # 12:00 in New York (EST)
        (LUNCH, datetime(2026, 1, 15, 18, 30, tzinfo=UTC), False),  # 13:30
        (LUNCH, datetime(2026, 1, 15, 16, 59, tzinfo=UTC), False),
    ],
)
def test_contains(hours: QuietHours, instant: datetime, inside: bool) -> None:
    assert hours.contains(instant) is inside


def test_the_end_is_the_next_local_end_in_utc() -> None:
    assert NIGHT.ends_after(datetime(2026, 6, 1, 20, 30, tzinfo=UTC)) == datetime(
        2026, 6, 2, 5, 0, tzinfo=UTC
    )
    assert NIGHT.ends_after(datetime(2026, 6, 2, 1, 0, tzinfo=UTC)) == datetime(
        2026, 6, 2, 5, 0, tzinfo=UTC
    )
    assert LUNCH.ends_after(datetime(2026, 1, 15, 17, 15, tzinfo=UTC)) == datetime(
        2026, 1, 15, 18, 30, tzinfo=UTC
    )


def test_a_night_across_a_dst_change_ends_at_local_seven() -> None:
    # Paris moves from CET to CEST on 2026-03-29 at 02:00: 07:00 local is 05:00 UTC that day.
    assert NIGHT.ends_after(datetime(2026, 3, 28, 22, 0, tzinfo=UTC)) == datetime(
        2026, 3, 29, 5, 0, tzinfo=UTC
    )
    # And back on 2026-10-25: 07:00 local is 06:00 UTC.
    assert NIGHT.ends_after(datetime(2026, 10, 24, 21, 0, tzinfo=UTC)) == datetime(
        2026, 10, 25, 6, 0, tzinfo=UTC
    )
