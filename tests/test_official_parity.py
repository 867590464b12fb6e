"""Drop-in, call by call: the official ``trubrics`` 1.8.5 SDK and ours over a table of calls.

Both send each call to the same local endpoint; the payloads must be identical once the
differences the Tracking API guide (docs/guide/tracking.md) lists under "Differences, all
deliberate" are applied to the official one. Each difference is a named transformation here,
and the guide must name it: a new difference fails until it is both written down here and
documented there.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trubrics as official
from conftest import API_KEY

from trubrics_otel import Trubrics

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide" / "tracking.md"
WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=dt.timezone.utc)
NAIVE = dt.datetime(2026, 3, 4, 5, 6, 7)
PLUS_2H = dt.datetime(2026, 3, 4, 7, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
Event = dict[str, Any]


def _utc(event: Event) -> None:
    stamp = dt.datetime.fromisoformat(event["timestamp"])
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    event["timestamp"] = stamp.astimezone(dt.timezone.utc).isoformat()


def _thread_from_property(event: Event) -> None:
    if event["thread_id"] is None and "$thread_id" in (event["properties"] or {}):
        event["thread_id"] = str(event["properties"]["$thread_id"])


def _assistant_from_property(event: Event) -> None:
    if event["assistant_id"] is None and "$assistant_id" in (event["properties"] or {}):
        event["assistant_id"] = event["properties"]["$assistant_id"]


# name: (how the official payload changes, the words the guide's list says it in)
DIFFERENCES: dict[str, tuple[Callable[[Event], None], str]] = {
    "utc": (_utc, "Timestamps are sent in UTC with an explicit offset"),
    "empty properties": (
        lambda e: e.update(properties=e["properties"] or {}), "`properties=None` is sent as `{}`"),
    "user id as text": (lambda e: e.update(user_id=str(e["user_id"])), "an `int` is taken as its text"),
    "$thread_id fills thread_id": (_thread_from_property, "`$thread_id` in the properties fills `thread_id`"),
    "$assistant_id fills assistant_id": (
        _assistant_from_property, "`$assistant_id` fills `assistant_id`"),
    "thread_id=0": (lambda e: e.update(thread_id="0"), '`thread_id=0` is sent as `"0"`'),
}

# (name, method, arguments, the differences that apply); "utc" and "empty properties" are
# harmless where they change nothing, so only the ones that change something are listed
CASES: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    ("event, defaults", "track", dict(user_id="u", event="Sign up"), ("empty properties",)),
    ("event, properties=None", "track",
     dict(user_id="u", event="e", properties=None, timestamp=WHEN), ("empty properties",)),
    ("event, properties", "track",
     dict(user_id="u", event="e", properties={"plan": "pro", "n": [1, 2.5, None]}, timestamp=WHEN), ()),
    ("event, naive timestamp", "track",
     dict(user_id="u", event="e", properties={"a": 1}, timestamp=NAIVE), ("utc",)),
    ("event, aware timestamp (+02:00)", "track",
     dict(user_id="u", event="e", properties={"a": 1}, timestamp=PLUS_2H), ("utc",)),
    ("event, int user id", "track",
     dict(user_id=42, event="e", properties={}, timestamp=WHEN), ("user id as text",)),
    ("event, $thread_id only", "track",
     dict(user_id="u", event="Thumbs up", properties={"$thread_id": "t1"}, timestamp=WHEN), ()),
    ("llm, defaults", "track_llm", dict(user_id="u", prompt="p", generation="g"), ("empty properties",)),
    ("llm, every argument", "track_llm",
     dict(user_id="u", prompt="Q", generation="A", prompt_event_name="Asked",
          generation_event_name="Answered", assistant_id="gpt-4o", properties={"cost": 0.002},
          timestamp=WHEN, latency=0.25, thread_id="t-42"), ()),
    ("llm, only $thread_id in properties", "track_llm",
     dict(user_id="u", prompt="p", generation="g", properties={"$thread_id": "t1"}, timestamp=WHEN),
     ("$thread_id fills thread_id",)),
    ("llm, only $assistant_id in properties", "track_llm",
     dict(user_id="u", prompt="p", generation="g", properties={"$assistant_id": "m"}, timestamp=WHEN),
     ("$assistant_id fills assistant_id",)),
    ("llm, thread_id=0", "track_llm",
     dict(user_id="u", prompt="p", generation="g", thread_id=0, timestamp=WHEN),
     ("thread_id=0", "empty properties")),
    ("llm, int thread id and latency", "track_llm",
     dict(user_id="u", prompt="p", generation="g", thread_id=7, latency=2, timestamp=NAIVE),
     ("utc", "empty properties")),
    ("llm, int user id", "track_llm",
     dict(user_id=7, prompt="p", generation="g", properties={"k": "v"}, timestamp=WHEN),
     ("user id as text",)),
]


def _sent(endpoint, sdk, method: str, arguments: dict[str, Any]) -> list[Event]:
    endpoint.batches = {path: [] for path in endpoint.batches}
    getattr(sdk, method)(**arguments)
    sdk.close()
    return endpoint.events("publish_events") + endpoint.events("publish_llm_events")


def _without_clock(event: Event) -> Event:
    """A default timestamp is the moment of the call: check it, then leave it out."""
    stamp = dt.datetime.fromisoformat(event.pop("timestamp"))
    assert stamp.tzinfo is not None
    assert abs((dt.datetime.now(dt.timezone.utc) - stamp).total_seconds()) < 120
    return event


@pytest.mark.parametrize("name, method, arguments, differences", CASES, ids=[c[0] for c in CASES])
def test_same_call_same_payload_as_the_official_sdk(endpoint, name, method, arguments, differences):
    (theirs,) = _sent(endpoint, official.Trubrics(api_key=API_KEY, host=endpoint.url), method, arguments)
    (ours,) = _sent(endpoint, Trubrics(api_key=API_KEY, host=endpoint.url), method, arguments)
    properties = ours["properties"]
    assert re.fullmatch(r"[0-9a-f]{32}", properties.pop("$trace_id"))  # documented: the event's id
    assert re.fullmatch(r"[0-9a-f]{16}", properties.pop("$span_id"))
    for difference in differences:
        DIFFERENCES[difference][0](theirs)
    if "timestamp" not in arguments:
        ours, theirs = _without_clock(ours), _without_clock(theirs)
    assert ours == theirs
    assert list(ours) == list(theirs)  # the same fields, in the same order


def test_every_difference_is_in_the_guide():
    text = GUIDE.read_text()
    section = text[text.index("Differences, all deliberate"):text.index("Special properties")]
    section = " ".join(section.split())
    missing = [name for name, (_, words) in DIFFERENCES.items() if words not in section]
    assert not missing, f"the guide's 'Differences, all deliberate' does not list: {missing}"


def test_the_logger_attribute_is_there_as_in_the_official_sdk():
    """The official docs set the verbosity with ``trubrics.logger.setLevel(...)``: the same line
    works here, on the same logger (the one given, else ``trubrics``'s)."""
    mine = logging.getLogger("app.analytics")
    for sdk_class in (official.Trubrics, Trubrics):
        default, given = sdk_class(api_key=API_KEY), sdk_class(api_key=API_KEY, logger=mine)
        assert (default.logger, given.logger) == (logging.getLogger("trubrics"), mine), sdk_class
        default.close()
        given.close()
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    mine.addHandler(handler)
    try:
        ours = Trubrics(api_key=API_KEY, host="http://127.0.0.1:9", logger=mine)
        ours.logger.setLevel(logging.ERROR)
        ours.track(user_id="", event="Sign up")  # skipped, and said so on the app's logger
        ours.close()
    finally:
        mine.removeHandler(handler)
    assert any("user_id" in r.getMessage() for r in records), [r.getMessage() for r in records]
