"""When HR dates take effect: the local start of a hire date, the local end of a
termination date, in the worker's time zone. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone_of(*, time_zone: str | None, location: str | None,
            location_time_zones: Mapping[str, str], default: str) -> ZoneInfo:
    """The worker's zone: their own, else their location's, else the source's default
    (UTC when none of those is a known IANA zone)."""
    for name in (time_zone, location_time_zones.get(location or ""), default):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def valid_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def hire_instant(hire_date: date, zone: ZoneInfo) -> datetime:
    """00:00 local on the hire date, in UTC."""
    return datetime.combine(hire_date, time(0, 0), tzinfo=zone).astimezone(UTC)


def termination_instant(termination_date: date, zone: ZoneInfo,
                        at: time | None = None) -> datetime:
    """When a termination takes effect, in UTC: ``at`` local time on the date when HR gives
    one, else the end of that day (00:00 local the next day)."""
    if at is not None:
        return datetime.combine(termination_date, at, tzinfo=zone).astimezone(UTC)
    next_day = termination_date + timedelta(days=1)
    return datetime.combine(next_day, time(0, 0), tzinfo=zone).astimezone(UTC)
