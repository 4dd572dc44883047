"""When a recurring campaign occurs: pure functions over a recurrence and an IANA time zone.

A recurrence is a five-field cron expression (minute hour day-of-month month day-of-week,
as in Debian's crontab(5): names like ``MON`` or ``JAN``, ``L``, ``#``, day-of-month and
day-of-week combined by OR when both are restricted) or a preset:

=============  ==============================================================
monthly        local midnight on the 1st of every month (``0 0 1 * *``)
quarterly      local midnight on the 1st of Jan, Apr, Jul and Oct (``0 0 1 1,4,7,10 *``)
semiannually   local midnight on the 1st of Jan and Jul (``0 0 1 1,7 *``)
yearly         local midnight on the 1st of Jan (``0 0 1 1 *``)
=============  ==============================================================

Occurrences are computed in the schedule's time zone (``zoneinfo``) by cronsim and returned
as UTC instants. Daylight saving time follows Debian cron: a time that does not exist (the
clocks jump forward over it) occurs right after the jump; a time that occurs twice (the
clocks go back) occurs once, the first time. Nothing here reads a clock or a database.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import islice, pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

PRESETS: dict[str, str] = {
    "monthly": "0 0 1 * *",
    "quarterly": "0 0 1 1,4,7,10 *",
    "semiannually": "0 0 1 1,7 *",
    "yearly": "0 0 1 1 *",
}
# How far ahead consecutive campaigns are checked for overlap: two years of occurrences, at
# least MIN_CHECKED (a yearly 29 February needs several), at most MAX_CHECKED.
CHECK_HORIZON = timedelta(days=2 * 366)
MIN_CHECKED = 4
MAX_CHECKED = 400


class RecurrenceError(ValueError):
    """A recurrence or time zone that cannot be used; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def normal_form(recurrence: str) -> str:
    """``recurrence`` as stored: single spaces, a preset in lower case."""
    text = " ".join(recurrence.split())
    return text.lower() if text.lower() in PRESETS else text


def cron_expression(recurrence: str) -> str:
    """The cron expression of ``recurrence`` (a preset's, or the expression itself);
    RecurrenceError for an unknown preset or an invalid expression."""
    text = " ".join(recurrence.split())
    preset = PRESETS.get(text.lower())
    if preset is not None:
        return preset
    fields = text.split(" ")
    if len(fields) == 1:
        raise RecurrenceError("recurrence", f"unknown preset {text!r}: use one of "
                              f"{', '.join(PRESETS)} or a five-field cron expression")
    if len(fields) != 5:
        raise RecurrenceError("recurrence", "a cron expression has five fields (minute hour "
                              f"day-of-month month day-of-week), not {len(fields)}")
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))  # parsing only
    except CronSimError as error:
        raise RecurrenceError("recurrence", f"invalid cron expression: {error}") from error
    return text


def zone(time_zone: str) -> ZoneInfo:
    """The IANA time zone named ``time_zone``; RecurrenceError when there is none."""
    try:
        return ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise RecurrenceError("time_zone", f"unknown time zone {time_zone!r} (an IANA name "
                              "such as Europe/Paris or UTC)") from error


def occurrences(recurrence: str, time_zone: str, *, after: datetime) -> Iterator[datetime]:
    """The occurrences strictly after ``after`` (aware), as increasing UTC instants; the
    iteration ends when none comes within fifty years."""
    expr, tz = cron_expression(recurrence), zone(time_zone)
    last = after.astimezone(UTC)
    found = CronSim(expr, after.astimezone(tz))
    while True:
        try:
            local = next(found)
        except (StopIteration, OverflowError):  # none within fifty years, or past year 9999
            return
        instant = local.astimezone(UTC)
        # cronsim works on the wall clock: around a clock change it may hand back a wall
        # time already passed in UTC terms (the first of a repeated hour).
        if instant > last:
            last = instant
            yield instant


def next_after(recurrence: str, time_zone: str, after: datetime) -> datetime | None:
    """The first occurrence strictly after ``after``, UTC (None: never again)."""
    return next(occurrences(recurrence, time_zone, after=after), None)


def first_from(recurrence: str, time_zone: str, start: datetime) -> datetime | None:
    """The first occurrence at or after ``start``, UTC (None: never)."""
    return next_after(recurrence, time_zone, start - timedelta(microseconds=1))


def latest_due(recurrence: str, time_zone: str, due: datetime, now: datetime) -> datetime:
    """The last occurrence in ``[due, now]`` (``due`` being an occurrence not after
    ``now``): the one a catch-up campaign stands for after occurrences were missed."""
    latest = due
    for instant in occurrences(recurrence, time_zone, after=due):
        if instant > now:
            break
        latest = instant
    return latest


def deadline(occurrence: datetime, time_zone: str, days: int) -> datetime:
    """``days`` calendar days after ``occurrence`` on the local wall clock (same local time,
    whatever the clock changes in between), UTC."""
    local = occurrence.astimezone(zone(time_zone))
    return (local + timedelta(days=days)).astimezone(UTC)


def local_date(occurrence: datetime, time_zone: str) -> date:
    """The date of ``occurrence`` in the time zone (names the campaign)."""
    return occurrence.astimezone(zone(time_zone)).date()


def overlap(recurrence: str, time_zone: str, days: int, *, start: datetime) -> str | None:
    """Why campaigns of ``days`` days, one per occurrence from ``start`` on, would overlap
    (one still open when the next starts), over the next two years of occurrences; None
    when they do not."""
    checked: list[datetime] = []
    for instant in islice(occurrences(recurrence, time_zone, after=start), MAX_CHECKED):
        checked.append(instant)
        if len(checked) > MIN_CHECKED and instant > checked[0] + CHECK_HORIZON:
            break
    for current, following in pairwise(checked):
        ends = deadline(current, time_zone, days)
        if ends >= following:
            tz = zone(time_zone)
            return (f"must be shorter than the time between two occurrences: the campaign "
                    f"of {current.astimezone(tz):%Y-%m-%d %H:%M} would end at "
                    f"{ends.astimezone(tz):%Y-%m-%d %H:%M}, when the next starts at "
                    f"{following.astimezone(tz):%Y-%m-%d %H:%M} ({time_zone})")
    return None


def check(recurrence: str, time_zone: str, days: int, *, start: datetime) -> list[
        tuple[str, str]]:
    """Every problem of a schedule's timing, as (field, message): an unknown preset or an
    invalid cron expression, an unknown time zone, a recurrence that never occurs, a
    duration under one day or reaching the next occurrence."""
    problems: list[tuple[str, str]] = []
    try:
        cron_expression(recurrence)
    except RecurrenceError as error:
        problems.append((error.field, error.message))
    try:
        zone(time_zone)
    except RecurrenceError as error:
        problems.append((error.field, error.message))
    if days < 1:
        problems.append(("duration_days", "must be at least 1"))
    if problems:
        return problems
    if first_from(recurrence, time_zone, start) is None:
        return [("recurrence", "never occurs (no date matches within fifty years)")]
    why = overlap(recurrence, time_zone, days, start=start - timedelta(microseconds=1))
    return [("duration_days", why)] if why else []
