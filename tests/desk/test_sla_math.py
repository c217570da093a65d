"""Business-time arithmetic and the SLA clock model: pure functions, no database.

Dates used: 2026-03-08 (Sun) New York springs forward, 2026-03-29 (Sun) Berlin springs forward,
2026-10-25 (Sun) Berlin falls back, 2026-11-01 (Sun) New York falls back. Japan has no DST.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.desk.businesshours import (
    BusinessCalendar,
    CalendarError,
    add_business_time,
    business_seconds_between,
    check_time_zone,
    format_day,
    is_open,
    parse_day,
    parse_holidays,
)
from server.desk.sla import Event, Targets, compute_clocks, state_at

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
HOUR = 3600


def office(zone: str, start: str = "09:00", end: str = "17:00", holidays: tuple[date, ...] = ()) -> BusinessCalendar:
    day = parse_day(f"{start}-{end}", "mon")
    return BusinessCalendar(zone, (day, day, day, day, day, (), ()), frozenset(holidays))


def local(zone: ZoneInfo, *parts: int) -> datetime:
    return datetime(*parts, tzinfo=zone)  # type: ignore[misc]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# Tokyo ---------------------------------------------------------------------------------------


def test_tokyo_friday_evening_rolls_over_the_weekend() -> None:
    tokyo = office("Asia/Tokyo", "09:00", "18:00")
    due = add_business_time(tokyo, local(TOKYO, 2026, 12, 4, 17, 0), 2 * HOUR)
    assert due == local(TOKYO, 2026, 12, 7, 10, 0)
    assert due == utc(2026, 12, 7, 1, 0)


def test_tokyo_holidays_are_closed_all_day() -> None:
    new_year = (date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3))
    tokyo = office("Asia/Tokyo", "09:00", "18:00", new_year)
    # Thursday 31 December 17:00: one hour left that day, then Friday 1 January is a holiday.
    due = add_business_time(tokyo, local(TOKYO, 2026, 12, 31, 17, 0), 2 * HOUR)
    assert due == local(TOKYO, 2027, 1, 4, 10, 0)
    assert business_seconds_between(tokyo, local(TOKYO, 2026, 12, 31, 0, 0), local(TOKYO, 2027, 1, 5, 0, 0)) == (
        18 * HOUR
    )


def test_event_outside_hours_counts_from_the_next_opening() -> None:
    tokyo = office("Asia/Tokyo", "09:00", "18:00")
    saturday = local(TOKYO, 2026, 12, 5, 11, 30)
    assert add_business_time(tokyo, saturday, 30 * 60) == local(TOKYO, 2026, 12, 7, 9, 30)
    assert add_business_time(tokyo, saturday, 0) == local(TOKYO, 2026, 12, 7, 9, 0)
    early = local(TOKYO, 2026, 12, 8, 6, 0)
    assert add_business_time(tokyo, early, HOUR) == local(TOKYO, 2026, 12, 8, 10, 0)
    late = local(TOKYO, 2026, 12, 8, 22, 0)
    assert add_business_time(tokyo, late, HOUR) == local(TOKYO, 2026, 12, 9, 10, 0)
    assert not is_open(tokyo, saturday) and is_open(tokyo, local(TOKYO, 2026, 12, 8, 9, 0))


def test_lunch_break_and_several_intervals_a_day() -> None:
    day = parse_day("13:00-18:00, 09:00-12:00", "mon")
    assert day == ((540, 720), (780, 1080))
    calendar = BusinessCalendar("Asia/Tokyo", (day,) * 5 + ((), ()))
    assert add_business_time(calendar, local(TOKYO, 2026, 12, 7, 11, 0), 2 * HOUR) == local(TOKYO, 2026, 12, 7, 14, 0)


def test_same_instant_different_offices() -> None:
    moment = utc(2026, 12, 7, 0, 0)  # Monday 09:00 in Tokyo, Sunday 19:00 in New York
    assert add_business_time(office("Asia/Tokyo"), moment, HOUR) == utc(2026, 12, 7, 1, 0)
    assert add_business_time(office("America/New_York"), moment, HOUR) == local(NEW_YORK, 2026, 12, 7, 10, 0)
    assert add_business_time(office("Europe/Berlin"), moment, HOUR) == local(BERLIN, 2026, 12, 7, 10, 0)


# New York across DST -------------------------------------------------------------------------


def test_new_york_office_hours_across_the_march_switch() -> None:
    new_york = office("America/New_York")
    start = local(NEW_YORK, 2026, 3, 6, 16, 0)  # Friday 16:00 EST = 21:00 UTC
    assert start == utc(2026, 3, 6, 21, 0)
    due = add_business_time(new_york, start, 2 * HOUR)
    assert due == local(NEW_YORK, 2026, 3, 9, 10, 0)
    assert due == utc(2026, 3, 9, 14, 0)  # EDT: UTC-4 (would be 15:00 with the old offset)
    assert business_seconds_between(new_york, start, due) == 2 * HOUR


def test_new_york_office_hours_across_the_november_switch() -> None:
    new_york = office("America/New_York")
    start = local(NEW_YORK, 2026, 10, 30, 16, 0)  # Friday 16:00 EDT = 20:00 UTC
    assert start == utc(2026, 10, 30, 20, 0)
    due = add_business_time(new_york, start, 2 * HOUR)
    assert due == utc(2026, 11, 2, 15, 0)  # Monday 10:00 EST = UTC-5
    assert due == local(NEW_YORK, 2026, 11, 2, 10, 0)


def test_round_the_clock_new_york_calendar_has_23_and_25_hour_days() -> None:
    whole_day = parse_day("00:00-24:00", "mon")
    always = BusinessCalendar("America/New_York", (whole_day,) * 7)
    spring = business_seconds_between(always, local(NEW_YORK, 2026, 3, 8), local(NEW_YORK, 2026, 3, 9))
    autumn = business_seconds_between(always, local(NEW_YORK, 2026, 11, 1), local(NEW_YORK, 2026, 11, 2))
    assert (spring, autumn) == (23 * HOUR, 25 * HOUR)
    # 24 business hours from Saturday noon are 24 real hours: Sunday 13:00 on the new clock.
    due = add_business_time(always, local(NEW_YORK, 2026, 3, 7, 12, 0), 24 * HOUR)
    assert due == local(NEW_YORK, 2026, 3, 8, 13, 0)
    assert add_business_time(None, local(NEW_YORK, 2026, 3, 7, 12, 0), 24 * HOUR) == due


def test_hours_inside_the_skipped_and_repeated_hour() -> None:
    night = parse_day("01:00-04:00", "mon")
    calendar = BusinessCalendar("America/New_York", (night,) * 7)
    # 01:00-04:00 lasts 2 real hours on the spring day (02:00-03:00 does not exist) ...
    assert business_seconds_between(calendar, local(NEW_YORK, 2026, 3, 8), local(NEW_YORK, 2026, 3, 9)) == 2 * HOUR
    # ... and 4 on the autumn day (01:00-02:00 happens twice).
    assert business_seconds_between(calendar, local(NEW_YORK, 2026, 11, 1), local(NEW_YORK, 2026, 11, 2)) == 4 * HOUR


# Berlin --------------------------------------------------------------------------------------


def test_berlin_across_its_march_switch() -> None:
    berlin = office("Europe/Berlin")
    start = local(BERLIN, 2026, 3, 26, 16, 0)  # Thursday 16:00 CET = 15:00 UTC
    due = add_business_time(berlin, start, 16 * HOUR)  # 1 h Thursday, 8 h Friday, 7 h Monday
    assert due == local(BERLIN, 2026, 3, 30, 16, 0)
    assert due == utc(2026, 3, 30, 14, 0)  # CEST = UTC+2


def test_berlin_and_new_york_switch_on_different_weekends() -> None:
    # Between 25 October and 1 November 2026 Berlin is on winter time and New York is not yet.
    berlin, new_york = office("Europe/Berlin"), office("America/New_York")
    moment = utc(2026, 10, 27, 12, 0)  # Tuesday: 13:00 in Berlin (CET), 08:00 in New York (EDT)
    assert add_business_time(berlin, moment, HOUR) == utc(2026, 10, 27, 13, 0)
    assert add_business_time(new_york, moment, HOUR) == utc(2026, 10, 27, 14, 0)
    friday = local(BERLIN, 2026, 10, 23, 16, 30)  # CEST
    assert add_business_time(berlin, friday, HOUR) == utc(2026, 10, 26, 8, 30)  # Monday 09:30 CET


def test_between_is_the_inverse_of_add() -> None:
    berlin = office("Europe/Berlin", holidays=(date(2026, 4, 3), date(2026, 4, 6)))
    start = local(BERLIN, 2026, 3, 25, 10, 15)
    for hours in (0.5, 3, 8, 17, 40, 100):
        due = add_business_time(berlin, start, hours * HOUR)
        assert business_seconds_between(berlin, start, due) == pytest.approx(hours * HOUR)


def test_parsing_and_validation() -> None:
    assert parse_day("", "mon") == ()
    assert parse_day("9:00-12:00;12:00-13:30", "mon") == ((540, 810),)
    assert format_day(parse_day("09:00-12:00, 13:00-18:00", "mon")) == "09:00-12:00, 13:00-18:00"
    for bad in ("9-5", "18:00-09:00", "09:00-25:00", "09:75-10:00"):
        with pytest.raises(CalendarError):
            parse_day(bad, "mon")
    assert parse_holidays("2027-01-01 New Year\n\n2026-12-31") == (date(2026, 12, 31), date(2027, 1, 1))
    with pytest.raises(CalendarError):
        parse_holidays("31/12/2026")
    assert check_time_zone(" Asia/Tokyo ") == "Asia/Tokyo"
    with pytest.raises(CalendarError):
        check_time_zone("Mars/Olympus")
    with pytest.raises(CalendarError):
        BusinessCalendar("UTC", ((),) * 7)


def test_a_calendar_that_never_opens_is_refused_not_looped_forever() -> None:
    day = parse_day("09:00-10:00", "mon")
    calendar = BusinessCalendar(
        "UTC", (day,) + ((),) * 6, frozenset(date(2026, 1, 5) + timedelta(weeks=w) for w in range(200))
    )
    with pytest.raises(CalendarError):
        add_business_time(calendar, utc(2026, 1, 1), HOUR * 1000)


# The clock model ------------------------------------------------------------------------------

T0 = local(NEW_YORK, 2026, 3, 6, 10, 0)  # Friday 10:00 EST


def test_first_reply_target_then_met() -> None:
    targets = Targets(first_reply=60, resolution=8 * 60)
    calendar = office("America/New_York")
    clocks = compute_clocks(targets, calendar, T0, [], T0 + timedelta(minutes=10))
    assert clocks.timers["first_reply"].due_at == T0 + timedelta(hours=1)
    assert clocks.timers["first_reply"].at_risk_at == T0 + timedelta(minutes=45)
    assert clocks.state(T0 + timedelta(minutes=10)) == "ok"
    assert clocks.state(T0 + timedelta(minutes=50)) == "at_risk"
    assert clocks.state(T0 + timedelta(minutes=61)) == "breached"
    replied = compute_clocks(
        targets, calendar, T0, [Event(T0 + timedelta(minutes=30), "agent")], T0 + timedelta(hours=2)
    )
    assert set(replied.timers) == {"resolution"} and not replied.breaches
    # The resolution target (8 business hours) spans the DST weekend: Monday 10:00 EDT.
    assert replied.due_at == local(NEW_YORK, 2026, 3, 9, 10, 0)


def test_late_first_reply_is_recorded_as_a_breach() -> None:
    clocks = compute_clocks(Targets(first_reply=60), None, T0, [Event(T0 + timedelta(hours=2), "agent")], T0)
    assert [(b.target, b.due_at, b.met_at) for b in clocks.breaches] == [
        ("first_reply", T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    ]
    assert clocks.due_at is None and clocks.state(T0) == "done"


def test_next_reply_starts_with_the_customers_message_after_an_agent_reply() -> None:
    targets = Targets(first_reply=60, next_reply=120)
    events = [
        Event(T0 + timedelta(minutes=5), "customer"),  # before any agent reply: first reply covers it
        Event(T0 + timedelta(minutes=20), "agent"),
        Event(T0 + timedelta(minutes=40), "customer"),
        Event(T0 + timedelta(minutes=50), "customer"),  # does not restart the running clock
    ]
    clocks = compute_clocks(targets, None, T0, events, T0 + timedelta(hours=1))
    assert set(clocks.timers) == {"next_reply"}
    assert clocks.due_at == T0 + timedelta(minutes=160)
    answered = compute_clocks(targets, None, T0, [*events, Event(T0 + timedelta(hours=3), "agent")], T0)
    assert not answered.timers
    assert [(b.target, b.met_at) for b in answered.breaches] == [("next_reply", T0 + timedelta(hours=3))]


def test_pending_and_on_hold_pause_resolution_solved_stops_it_reopen_resumes() -> None:
    targets = Targets(resolution=4 * 60)
    events = [
        Event(T0 + timedelta(hours=1), "agent"),
        Event(T0 + timedelta(hours=1), "status", "pending"),  # 1 h used
    ]
    paused = compute_clocks(targets, None, T0, events, T0 + timedelta(days=5))
    assert paused.timers["resolution"].paused and paused.due_at is None
    assert paused.state(T0 + timedelta(days=5)) == "paused" and not paused.breaches
    events += [Event(T0 + timedelta(hours=10), "customer"), Event(T0 + timedelta(hours=10), "status", "open")]
    resumed = compute_clocks(targets, None, T0, events, T0 + timedelta(hours=10))
    assert resumed.due_at == T0 + timedelta(hours=13)  # 3 h left from the reopen
    events += [Event(T0 + timedelta(hours=11), "status", "on_hold")]
    on_hold = compute_clocks(targets, None, T0, events, T0 + timedelta(hours=30))
    assert on_hold.timers["resolution"].used_seconds == 2 * HOUR and on_hold.due_at is None
    events += [Event(T0 + timedelta(hours=20), "status", "open"), Event(T0 + timedelta(hours=21), "status", "solved")]
    solved = compute_clocks(targets, None, T0, events, T0 + timedelta(days=9))
    assert not solved.timers and not solved.breaches and solved.state(T0) == "done"
    events += [Event(T0 + timedelta(days=2), "customer"), Event(T0 + timedelta(days=2), "status", "open")]
    reopened = compute_clocks(targets, None, T0, events, T0 + timedelta(days=2))
    assert reopened.due_at == T0 + timedelta(days=2, hours=1)  # 3 h used before the solve


def test_resolution_breach_is_recorded_once() -> None:
    targets = Targets(resolution=60)
    events = [Event(T0 + timedelta(hours=2), "status", "pending"), Event(T0 + timedelta(hours=3), "status", "open")]
    clocks = compute_clocks(targets, None, T0, events, T0 + timedelta(hours=4))
    assert [b.target for b in clocks.breaches] == ["resolution"]
    assert clocks.state(T0 + timedelta(hours=4)) == "breached"


def test_solving_fulfils_every_running_clock() -> None:
    targets = Targets(first_reply=60, next_reply=60, resolution=600)
    clocks = compute_clocks(targets, None, T0, [Event(T0 + timedelta(minutes=5), "status", "solved")], T0)
    assert not clocks.timers and not clocks.breaches


def test_state_at() -> None:
    now = utc(2026, 1, 1, 12)
    assert state_at(None, None, now) == "done"
    assert state_at(None, None, now, paused=True) == "paused"
    assert state_at(now + timedelta(hours=1), now + timedelta(minutes=30), now) == "ok"
    assert state_at(now + timedelta(hours=1), now - timedelta(minutes=1), now) == "at_risk"
    assert state_at(now, now, now) == "breached"
