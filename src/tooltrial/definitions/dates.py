"""Reading dates: strictly in expectations, leniently in what a model writes.

Guarantees:

- An expectation's date is ISO 8601 and nothing else (``2025-03-14``,
  ``2025-03-13T15:00``, ``2025-03-13T15:00:00+01:00``, ``…Z``), so what a scenario
  means never depends on a parser's guess.
- A model's value may be any common format: ISO with or without a zone,
  ``2025-3-14 17:59``, ``March 14, 2025 5:59pm``, ``14 Mar 2025``, ``03/14/2025``
  (month first when both readings are possible). It is read with ``python-dateutil``.
- A value without a UTC offset is read in the offset of the experiment's fixed timestamp.
- A value that names no full calendar day (``Friday``, ``tomorrow``, ``March 14``), a
  zone name dateutil cannot resolve (``PST``), or a POSIX-style ``GMT+2`` (whose sign
  means the opposite of what most people write) is not read: it matches nothing.
- Reading never raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
LOOKS_ISO = re.compile(r"^\s*\d{4}-\d{2}-\d{2}")
_POSIX_ZONE = re.compile(r"[A-Za-z]{2,}\s*[+-]\d")
_MAX_LENGTH = 64  # longer text is a sentence, not a date
_DEFAULT_A = datetime(2000, 1, 1, 0, 0, 0)
_DEFAULT_B = datetime(2001, 2, 2, 1, 0, 0)  # differs from A in every part that must be written
_UTC_NAMES = frozenset({"UTC", "GMT", "Z", "UT"})


class _UnknownZone(ValueError):
    pass


@dataclass(frozen=True)
class Written:
    """A value as a model wrote it: the moment (zone-aware) and whether it had a time."""

    moment: datetime
    has_time: bool

    def day(self, zone: tzinfo) -> date:
        """The calendar day meant: as written for a bare date, else in ``zone``."""
        return self.moment.astimezone(zone).date() if self.has_time else self.moment.date()


def iso_instant(text: str, zone: tzinfo) -> datetime | None:
    """An expectation's ISO date and time; None if it is not exactly that."""
    text = text.strip()
    if not ISO_INSTANT.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def iso_day(text: str) -> date | None:
    """An expectation's ISO calendar day (``YYYY-MM-DD``); None if it is not exactly that."""
    text = text.strip()
    if not ISO_DAY.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def read_written(text: str, zone: tzinfo) -> Written | None:
    """A model's date or date-time in any common format; None when it names no day."""
    text = text.strip()
    if not text or len(text) > _MAX_LENGTH:
        return None
    return _read_iso(text, zone) or _read_common(text, zone)


def _read_iso(text: str, zone: tzinfo) -> Written | None:
    if ISO_DAY.match(text):
        day = iso_day(text)
        return None if day is None else Written(_midnight(day, zone), has_time=False)
    moment = iso_instant(text, zone)
    return None if moment is None else Written(moment, has_time=True)


def _read_common(text: str, zone: tzinfo) -> Written | None:
    if _POSIX_ZONE.search(text):
        return None
    from dateutil import parser as _dateutil  # only scoring needs it, not a run's start

    try:
        a = _dateutil.parse(text, default=_DEFAULT_A, tzinfos=_zone_named)
        b = _dateutil.parse(text, default=_DEFAULT_B, tzinfos=_zone_named)
    except (ValueError, OverflowError, TypeError):  # ParserError is a ValueError
        return None
    if a.date() != b.date():  # the year, month or day came from the default
        return None
    moment = a if a.tzinfo is not None else a.replace(tzinfo=zone)
    return Written(moment, has_time=a.hour == b.hour)


def _zone_named(name: str | None, offset: int | None) -> tzinfo | None:
    """dateutil's hook for zones written in the text: offsets and UTC only."""
    if name is None and offset is None:
        return None  # no zone written: the caller applies the experiment's
    if name is None and offset is not None:
        return timezone(timedelta(seconds=offset))
    if name is not None and name.upper() in _UTC_NAMES:
        return UTC
    raise _UnknownZone(name)


def _midnight(day: date, zone: tzinfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone)
