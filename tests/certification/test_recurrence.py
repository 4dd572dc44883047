"""Occurrences of a recurrence in a time zone (pure, no database): presets mean local
midnight on the 1st, cron expressions follow Debian cron through DST changes, instants come
back in UTC; the timing checks name the field at fault."""

from __future__ import annotations

from datetime import UTC, date, datetime
from itertools import islice

import pytest

from certification import recurrence


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def take(rule: str, zone: str, after: str, count: int) -> list[datetime]:
    return list(islice(recurrence.occurrences(rule, zone, after=utc(after)), count))


@pytest.mark.parametrize(("rule", "zone", "after", "expected"), [
    # Paris: CET (+01:00) in winter, CEST (+02:00) from 29 March to 25 October 2026.
    ("quarterly", "Europe/Paris", "2026-01-15T09:00",
     ["2026-03-31T22:00", "2026-06-30T22:00", "2026-09-30T22:00", "2026-12-31T23:00"]),
    ("monthly", "America/New_York", "2026-02-10T00:00",
     ["2026-03-01T05:00", "2026-04-01T04:00", "2026-05-01T04:00"]),
    ("semiannually", "UTC", "2026-01-01T00:00",
     ["2026-07-01T00:00", "2027-01-01T00:00", "2027-07-01T00:00"]),
    ("Yearly", "Asia/Tokyo", "2026-01-15T09:00", ["2026-12-31T15:00", "2027-12-31T15:00"]),
    # Monday 06:00 in Paris, before and after the clocks go forward.
    ("0 6 * * 1", "Europe/Paris", "2026-03-20T00:00",
     ["2026-03-23T05:00", "2026-03-30T04:00", "2026-04-06T04:00"]),
    ("0  6 * *   MON", "Europe/Paris", "2026-03-23T05:00", ["2026-03-30T04:00"]),
    # 02:30 does not exist on 29 March (02:00 -> 03:00): right after the jump, 03:00 CEST.
    ("30 2 * * *", "Europe/Paris", "2026-03-27T12:00",
     ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"]),
    # 02:30 happens twice on 25 October (03:00 -> 02:00): once, the first time.
    ("30 2 * * *", "Europe/Paris", "2026-10-24T12:00",
     ["2026-10-25T00:30", "2026-10-26T01:30"]),
    ("0 9 L * *", "UTC", "2026-01-15T09:00", ["2026-01-31T09:00", "2026-02-28T09:00"]),
])
def test_occurrences_are_local_times_returned_in_utc(rule: str, zone: str, after: str,
                                                    expected: list[str]) -> None:
    assert take(rule, zone, after, len(expected)) == [utc(e) for e in expected]


def test_first_from_includes_the_instant_and_next_after_excludes_it() -> None:
    first = utc("2026-03-31T22:00")  # 1 April, midnight in Paris
    assert recurrence.first_from("quarterly", "Europe/Paris", first) == first
    assert recurrence.next_after("quarterly", "Europe/Paris", first) == utc("2026-06-30T22:00")
    assert recurrence.first_from("quarterly", "Europe/Paris",
                                 utc("2026-03-31T22:00:00.5")) == utc("2026-06-30T22:00")


def test_the_latest_due_occurrence_stands_for_the_missed_ones() -> None:
    assert recurrence.latest_due("monthly", "UTC", utc("2026-02-01T00:00"),
                                 utc("2026-05-03T12:00")) == utc("2026-05-01T00:00")
    assert recurrence.latest_due("monthly", "UTC", utc("2026-02-01T00:00"),
                                 utc("2026-02-01T00:00")) == utc("2026-02-01T00:00")


def test_a_deadline_keeps_the_local_time_across_a_clock_change() -> None:
    # 1 March 00:00 CET + 30 days = 31 March 00:00 CEST.
    assert recurrence.deadline(utc("2026-02-28T23:00"), "Europe/Paris", 30) == utc(
        "2026-03-30T22:00")
    assert recurrence.local_date(utc("2026-03-31T22:00"), "Europe/Paris") == date(2026, 4, 1)


def test_a_recurrence_that_never_matches_again_ends() -> None:
    # Fifth Monday of February: 2044 is the next; none within fifty years after 2292.
    assert take("0 0 * 2 MON#5", "UTC", "2026-01-15T00:00", 2) == [
        utc("2044-02-29T00:00"), utc("2072-02-29T00:00")]
    assert recurrence.next_after("0 0 * 2 MON#5", "UTC", utc("9990-01-01T00:00")) is None


START = utc("2026-01-15T09:00")


@pytest.mark.parametrize(("rule", "zone", "days", "fields"), [
    ("quarterly", "Europe/Paris", 89, []),
    ("monthly", "Europe/Paris", 27, []),
    ("0 6 * * 1", "Europe/Paris", 6, []),
    ("0 0 29 2 *", "UTC", 1000, []),
    # February is 28 days long: a 28-day campaign would end when the next starts.
    ("monthly", "Europe/Paris", 28, ["duration_days"]),
    ("quarterly", "Europe/Paris", 90, ["duration_days"]),  # Jan -> Apr 2027: 90 days
    ("0 6 * * 1", "Europe/Paris", 7, ["duration_days"]),
    ("0 0 1 * 1", "UTC", 1, ["duration_days"]),  # the 1st or a Monday: 1 Feb, then 2 Feb
    ("*/5 * * * *", "UTC", 1, ["duration_days"]),
    ("quarterly", "UTC", 0, ["duration_days"]),
    ("weekly", "UTC", 3, ["recurrence"]),
    ("0 6 * *", "UTC", 3, ["recurrence"]),
    ("0 0 1 1 * *", "UTC", 3, ["recurrence"]),  # a seconds field: not five fields
    ("0 25 * * *", "UTC", 3, ["recurrence"]),
    ("0 0 30 2 *", "UTC", 3, ["recurrence"]),
    ("quarterly", "Mars/Olympus_Mons", 3, ["time_zone"]),
    ("quarterly", "../../etc/passwd", 3, ["time_zone"]),
    ("weekly", "Nowhere", 0, ["recurrence", "time_zone", "duration_days"]),
])
def test_timing_checks_name_the_field_at_fault(rule: str, zone: str, days: int,
                                               fields: list[str]) -> None:
    assert [f for f, _ in recurrence.check(rule, zone, days, start=START)] == fields


def test_the_overlap_message_says_which_campaigns_would_overlap() -> None:
    [(field, message)] = recurrence.check("monthly", "Europe/Paris", 28, start=START)
    assert field == "duration_days"
    assert message.endswith("the campaign of 2026-02-01 00:00 would end at 2026-03-01 00:00, "
                            "when the next starts at 2026-03-01 00:00 (Europe/Paris)")


def test_a_recurrence_is_stored_in_its_normal_form() -> None:
    assert recurrence.normal_form("  Quarterly ") == "quarterly"
    assert recurrence.normal_form("0  6 * *\tMON") == "0 6 * * MON"
