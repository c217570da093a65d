"""Business-time arithmetic for SLA targets: pure functions over a calendar, no database.

A calendar has a time zone, weekly opening hours per weekday (local wall-clock minutes since
midnight, several intervals a day allowed) and holidays (local dates, closed all day). `None`
stands for the 24/7 calendar, where business time is elapsed time.

Every local interval is turned into two absolute instants through `zoneinfo`, so a day on which
the clocks change has the length it really has: an office open 00:00–24:00 in New York is open
23 hours on the March switch and 25 hours on the November one, and an office open 09:00–17:00
is open 8 hours either side of the switch at a different UTC offset. Instants in and out are
timezone-aware; arithmetic is done in whole seconds of real (UTC) time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAY_MINUTES = 24 * 60
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_SEARCH_DAYS = 3 * 366  # a calendar with hours always opens within this; otherwise it never does
_RANGE_RE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")

Interval = tuple[int, int]  # [start, end) in minutes since local midnight, 0 <= start < end <= 1440


class CalendarError(ValueError):
    """Opening hours or holidays that cannot be read; `field` names the part of the form."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class BusinessCalendar:
    time_zone: str
    weekly: tuple[tuple[Interval, ...], ...]  # Monday first, seven entries
    holidays: frozenset[date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if len(self.weekly) != 7:
            raise CalendarError("hours", "weekly hours need seven days")
        if not any(self.weekly):
            raise CalendarError("hours", "the calendar is never open")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


Calendar = BusinessCalendar | None  # None: 24/7


# Reading and writing hours ---------------------------------------------------------------------


def check_time_zone(name: str) -> str:
    name = name.strip()
    if name not in _zone_names():
        raise CalendarError("time_zone", name)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarError("time_zone", name) from exc
    return name


def _zone_names() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones()) | {"UTC"}
    return _ZONES


_ZONES: frozenset[str] | None = None


def time_zone_names() -> list[str]:
    return sorted(_zone_names())


def parse_day(text: str, field_name: str) -> tuple[Interval, ...]:
    """'09:00-12:00, 13:00-18:00' → ((540, 720), (780, 1080)); empty → closed. Overlapping or
    touching ranges are merged; 24:00 is the end of the day."""
    ranges: list[Interval] = []
    for part in (p for p in re.split(r"[,;\n]", text) if p.strip()):
        match = _RANGE_RE.match(part)
        if not match:
            raise CalendarError(field_name, part.strip())
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or start >= DAY_MINUTES or end > DAY_MINUTES or end <= start:
            raise CalendarError(field_name, part.strip())
        ranges.append((start, end))
    return merge(ranges)


def merge(ranges: list[Interval]) -> tuple[Interval, ...]:
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return tuple((s, e) for s, e in merged)


def format_day(intervals: tuple[Interval, ...] | list[list[int]]) -> str:
    return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in intervals)


def parse_holidays(text: str) -> tuple[date, ...]:
    """One date (YYYY-MM-DD) per line, optionally followed by a name: '2027-01-01 New Year'."""
    days: set[date] = set()
    for line in text.splitlines():
        token = line.strip().split(" ", 1)[0].strip()
        if not token:
            continue
        try:
            days.add(date.fromisoformat(token))
        except ValueError as exc:
            raise CalendarError("holidays", token) from exc
    return tuple(sorted(days))


def calendar_from_row(time_zone: str, hours: dict[str, list[list[int]]], holidays: list[str]) -> BusinessCalendar:
    """A calendar from its stored form: hours {"mon": [[540, 1080]], ...}, holidays ["2027-01-01"]."""
    weekly = tuple(tuple((int(s), int(e)) for s, e in hours.get(day, [])) for day in WEEKDAYS)
    return BusinessCalendar(time_zone, weekly, frozenset(date.fromisoformat(d) for d in holidays))


# Arithmetic -----------------------------------------------------------------------------------


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The instant of a local wall-clock minute (a time skipped by a DST switch maps forward)."""
    local = datetime.combine(day, time()) + timedelta(minutes=minute)
    return local.replace(tzinfo=zone).astimezone(UTC)


def open_intervals(calendar: BusinessCalendar, start: datetime) -> Iterator[tuple[datetime, datetime]]:
    """The calendar's open periods as UTC instants, in order, clipped to begin no earlier than
    `start`; stops after MAX_SEARCH_DAYS."""
    zone = calendar.zone
    day = start.astimezone(zone).date() - timedelta(days=1)
    for _ in range(MAX_SEARCH_DAYS + 2):
        if day not in calendar.holidays:
            for begin_minute, end_minute in calendar.weekly[day.weekday()]:
                begin, end = _at(day, begin_minute, zone), _at(day, end_minute, zone)
                if end <= start or end <= begin:
                    continue
                yield max(begin, start), end
        day += timedelta(days=1)


def add_business_time(calendar: Calendar, start: datetime, seconds: float) -> datetime:
    """The instant at which `seconds` of business time have passed since `start`. A start outside
    the hours counts from the next opening. Raises CalendarError when the calendar never opens
    within MAX_SEARCH_DAYS (e.g. every day a holiday)."""
    start = start.astimezone(UTC)
    remaining = max(0.0, float(seconds))
    if calendar is None:
        return start + timedelta(seconds=remaining)
    for begin, end in open_intervals(calendar, start):
        length = (end - begin).total_seconds()
        if remaining <= length:
            # A zero target is met at the next opening, not while closed.
            return begin + timedelta(seconds=remaining)
        remaining -= length
    raise CalendarError("hours", "the calendar does not open")


def business_seconds_between(calendar: Calendar, start: datetime, end: datetime) -> float:
    """Business time in [start, end); zero when end <= start."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds()
    total = 0.0
    for begin, finish in open_intervals(calendar, start):
        if begin >= end:
            break
        total += (min(finish, end) - begin).total_seconds()
    return total


def is_open(calendar: Calendar, moment: datetime) -> bool:
    if calendar is None:
        return True
    for begin, end in open_intervals(calendar, moment):
        return begin <= moment.astimezone(UTC) < end
    return False
