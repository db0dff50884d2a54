"""Due-time computation of response SLAs: a pure function, no database."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from routing.models import SlaPolicy
from routing.services.sla import BusinessCalendar, business_deadline, clock_times_compute

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE_BERLIN = BusinessCalendar(timezone="Europe/Berlin")


def at(tz, *args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=tz)


def test_without_a_calendar_it_is_wall_clock_time():
    # given
    start = at(UTC, 2026, 11, 21, 23, 58)  # a Saturday night
    # when
    due = business_deadline(start=start, seconds=300, calendar=None)
    # then
    assert due == at(UTC, 2026, 11, 22, 0, 3)


def test_inside_working_hours_it_counts_straight_on():
    due = business_deadline(start=at(BERLIN, 2026, 11, 24, 10, 0), seconds=300, calendar=OFFICE_BERLIN)
    assert due == at(BERLIN, 2026, 11, 24, 10, 5)


def test_after_hours_the_clock_starts_next_morning():
    due = business_deadline(start=at(BERLIN, 2026, 11, 24, 18, 30), seconds=300, calendar=OFFICE_BERLIN)
    assert due == at(BERLIN, 2026, 11, 25, 9, 5)


def test_friday_evening_carries_over_the_weekend():
    # given: 2 minutes left on Friday, 3 more on Monday
    start = at(BERLIN, 2026, 11, 27, 16, 58)
    # when
    due = business_deadline(start=start, seconds=300, calendar=OFFICE_BERLIN)
    # then
    assert due == at(BERLIN, 2026, 11, 30, 9, 3)


def test_holidays_are_skipped():
    calendar = BusinessCalendar(
        timezone="Europe/Berlin", holidays=frozenset({dt.date(2026, 12, 24), dt.date(2026, 12, 25)})
    )
    due = business_deadline(start=at(BERLIN, 2026, 12, 23, 16, 59), seconds=300, calendar=calendar)
    assert due == at(BERLIN, 2026, 12, 28, 9, 4)  # 24th, 25th holidays, 26th-27th weekend


def test_the_team_time_zone_decides_not_the_server_one():
    # given: 14:00 UTC is 09:00 in New York (winter): the New York team starts working right then
    start = at(UTC, 2026, 11, 24, 13, 0)
    calendar = BusinessCalendar(timezone="America/New_York")
    # when
    due = business_deadline(start=start, seconds=600, calendar=calendar)
    # then
    assert due == at(NEW_YORK, 2026, 11, 24, 9, 10)
    assert due.astimezone(UTC) == at(UTC, 2026, 11, 24, 14, 10)


def test_dst_spring_forward_a_night_shift_is_an_hour_shorter():
    # given: a 22:00-06:00 shift over the night Europe/Berlin skips 02:00-03:00 (29 March 2026)
    calendar = BusinessCalendar(
        timezone="Europe/Berlin", work_days=frozenset(range(7)), work_start=dt.time(22), work_end=dt.time(6)
    )
    start = at(BERLIN, 2026, 3, 28, 22, 0)
    # when: 7 real hours of shift that night
    due = business_deadline(start=start, seconds=7 * 3600, calendar=calendar)
    # then: the shift ends at 06:00 local, 7 real hours after 22:00
    assert due == at(BERLIN, 2026, 3, 29, 6, 0)
    assert due.astimezone(UTC) - start.astimezone(UTC) == dt.timedelta(hours=7)


def test_dst_fall_back_the_overflow_moves_to_the_next_shift():
    calendar = BusinessCalendar(
        timezone="Europe/Berlin", work_days=frozenset(range(7)), work_start=dt.time(22), work_end=dt.time(6)
    )
    start = at(BERLIN, 2026, 10, 24, 22, 0)  # the night of 25 October has 9 real hours of shift
    due = business_deadline(start=start, seconds=9 * 3600 + 60, calendar=calendar)
    assert due == at(BERLIN, 2026, 10, 25, 22, 1)


def test_around_the_clock_working_days_only():
    calendar = BusinessCalendar(timezone="UTC", work_start=dt.time(0), work_end=dt.time(0))
    due = business_deadline(start=at(UTC, 2026, 11, 27, 23, 0), seconds=2 * 3600, calendar=calendar)
    assert due == at(UTC, 2026, 11, 30, 1, 0)  # one hour Friday, one Monday


def test_a_calendar_with_no_working_time_falls_back_to_wall_clock():
    calendar = BusinessCalendar(timezone="UTC", work_days=frozenset())
    start = at(UTC, 2026, 11, 24, 10, 0)
    assert business_deadline(start=start, seconds=60, calendar=calendar) == start + dt.timedelta(seconds=60)


@pytest.mark.parametrize("business_hours", [False, True])
def test_warn_due_and_escalate_times_of_a_policy(business_hours):
    # given: 5 minutes, warn at 80 %, escalate 5 minutes after the breach, started 16:57 Berlin
    policy = SlaPolicy(
        first_touch_seconds=300, warn_percent=80, escalate_after_seconds=300, business_hours=business_hours
    )
    start = at(BERLIN, 2026, 11, 24, 16, 57)
    # when
    times = clock_times_compute(policy=policy, start=start, calendar=OFFICE_BERLIN)
    # then
    if business_hours:
        assert times.warn_at == at(BERLIN, 2026, 11, 25, 9, 1)
        assert times.due_at == at(BERLIN, 2026, 11, 25, 9, 2)
        assert times.escalate_at == at(BERLIN, 2026, 11, 25, 9, 7)
    else:
        assert times.warn_at == at(BERLIN, 2026, 11, 24, 17, 1)
        assert times.due_at == at(BERLIN, 2026, 11, 24, 17, 2)
        assert times.escalate_at == at(BERLIN, 2026, 11, 24, 17, 7)
