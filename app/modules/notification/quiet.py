"""Quiet hours: a daily window in the user's time zone during which nothing is pushed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class QuietHours:
    """From ``start`` to ``end`` (local wall-clock times) every day; overnight when start > end."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, start: str, end: str, time_zone: str) -> QuietHours:
        """Build from ``HH:MM`` strings and an IANA zone name (validated beforehand)."""
        return cls(time.fromisoformat(start), time.fromisoformat(end), ZoneInfo(time_zone))

    def contains(self, instant: datetime) -> bool:
        """Whether ``instant`` falls inside the quiet window."""
        local = instant.astimezone(self.zone).time().replace(tzinfo=None)
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def ends_after(self, instant: datetime) -> datetime:
        """Return the first end of the window after ``instant``, in UTC."""
        local = instant.astimezone(self.zone)
        for days in range(3):  # a DST jump never moves the end by more than a day
            day = local.date() + timedelta(days=days)
            candidate = datetime.combine(day, self.end, tzinfo=self.zone).astimezone(UTC)
            if candidate > instant:
                return candidate
        raise AssertionError("unreachable: an end within three days always exists")
