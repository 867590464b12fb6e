"""Times in the local store: microseconds since the epoch (UTC), shown as ISO 8601.

::

    to_us(parse_time("2h"))         # two hours ago
    iso(1_700_000_000_000_000)      # '2023-11-14T22:13:20+00:00'
"""

from __future__ import annotations

import datetime as _dt
import time

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICROSECOND = _dt.timedelta(microseconds=1)  # made once: a timedelta(...) call was ~1 µs of each event's time
_MIN_US = (_dt.datetime.min.replace(tzinfo=_dt.timezone.utc) - _EPOCH) // _MICROSECOND
_MAX_US = (_dt.datetime.max.replace(tzinfo=_dt.timezone.utc) - _EPOCH) // _MICROSECOND


def timestamp_us(text: str) -> int:
    """ISO 8601 → microseconds since epoch, for a time that can be shown back in UTC.

    Raises ``ValueError`` for text that is not ISO 8601 and for times outside years 1-9999.
    """
    try:  # parse_timestamp and to_us, inline: the ingest reads every event's time (~1 µs less)
        try:
            moment = _fromisoformat(text)
        except ValueError:
            moment = parse_timestamp(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=_UTC)
        since = moment - _EPOCH
        us = (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds
    except OverflowError:
        raise ValueError(f"out of range: {text[:64]!r}") from None
    if not _MIN_US <= us <= _MAX_US:  # what iso() can show back (a compare, not a datetime: ~1 µs)
        raise ValueError(f"out of range: {text[:64]!r}")
    return us


def parse_timestamp(text: str) -> _dt.datetime:
    """ISO 8601 → aware datetime; a naive one is UTC. Raises ``ValueError``."""
    try:  # Python 3.11+ reads a "Z" itself: the usual text is parsed as it is
        moment = _fromisoformat(text)
    except ValueError:
        moment = _fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_UTC)


_fromisoformat = _dt.datetime.fromisoformat  # bound once: the class attribute made a new method each call
_UTC = _dt.timezone.utc


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(text: str, now: _dt.datetime | None = None) -> _dt.datetime:
    """An ISO 8601 time, or a duration ago: ``90s``, ``15m``, ``2h``, ``7d``, ``1w``."""
    text = text.strip()
    unit = _UNITS.get(text[-1:].lower())
    if unit is not None:
        try:
            amount = float(text[:-1])
        except ValueError:
            amount = None
        if amount is not None and amount < 0:  # -1d would be a day ahead: an empty window
            raise ValueError(f"a duration ago is 0 or more, such as 1d for a day ago: {text[:64]!r}")
        if amount is not None:
            now = now or _dt.datetime.now(_dt.timezone.utc)
            try:  # inf, 1e400, 99999999d: beyond what a datetime holds
                return now - _dt.timedelta(seconds=amount * unit)
            except (OverflowError, ValueError):
                raise ValueError(f"a duration out of range (years 1-9999): {text[:64]!r}") from None
    try:
        return parse_timestamp(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 time nor a duration like 15m, 2h, 7d: {text!r}") from None


def to_us(moment: _dt.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    since = moment - _EPOCH  # whole microseconds: its fields, not a timedelta division (~1 µs less)
    return (since.days * 86_400 + since.seconds) * 1_000_000 + since.microseconds


def iso(us: int | None) -> str | None:
    if us is None:
        return None
    return (_EPOCH + _dt.timedelta(microseconds=us)).isoformat()


def now_us() -> int:
    return time.time_ns() // 1000
