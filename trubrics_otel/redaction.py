"""What may leave the process: masking, the content switch and size limits, on event dicts.

Applied by the exporter to every encoded event before it reaches the spool or the network
(never on the ``track()`` hot path), so it covers spans from instrumentation libraries too::

    policy = Policy(mask=lambda v: EMAIL.sub("<email>", v) if isinstance(v, str) else v,
                    capture_content=False)
    event = policy.apply("llm", event)      # never raises; never changes its argument

``mask`` is called on ``prompt``, ``generation`` and ``properties`` (the dict without the
``$trace_id`` / ``$span_id`` / ``$parent_span_id`` ids, which are kept); whatever it returns
replaces the value. If it raises, the value is replaced by ``"<masking failed>"`` (``{}`` for
properties) and an error is logged: an unmasked value never goes out.

``capture_content=False`` (or ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` set to
``false`` / ``no_content`` / ``0`` / ``no`` / ``off``) sends ``prompt`` and ``generation`` as
empty strings and drops the ``$text`` property; counts, models, tokens and latency still go.

Limits, each logged (once a minute per kind) when it bites:

=========================  ==========================================================
a string in properties     :data:`MAX_STRING_CHARS` characters, then ``…[truncated N]``
prompt / generation        :data:`MAX_TEXT_CHARS` characters each, the same way
nesting in properties      :data:`MAX_DEPTH` levels; deeper values become ``"<too deep>"``
properties as JSON         :data:`MAX_PROPERTIES_CHARS`; keys past it are dropped and
                           ``$truncated_properties`` says how many
=========================  ==========================================================

so an event is at most about 800 KB on the wire.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from trubrics_otel import semconv as sc

MAX_STRING_CHARS = 65_536
MAX_TEXT_CHARS = 262_144
MAX_DEPTH = 32
MAX_PROPERTIES_CHARS = 262_144
LOG_INTERVAL_S = 60.0

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
_CONTENT_OFF = frozenset({"false", "0", "no", "off", "no_content", "none"})
_IDS = (sc.PROP_TRACE_ID, sc.PROP_SPAN_ID, sc.PROP_PARENT_SPAN_ID)

Mask = Callable[[Any], Any]
Event = dict[str, Any]


def capture_content_default() -> bool:
    """Content is captured unless the GenAI content variable turns it off."""
    value = os.environ.get(CAPTURE_CONTENT_ENV)
    return value is None or value.strip().lower() not in _CONTENT_OFF


class Policy:
    def __init__(
        self,
        mask: Mask | None = None,
        capture_content: bool | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.mask = mask
        self.capture_content = capture_content_default() if capture_content is None else capture_content
        self._log = RateLimitedLog(logger or logging.getLogger("trubrics"))

    @property
    def masks_nothing(self) -> bool:
        """No mask and content on: an event's content may be stored as it was tracked."""
        return self.mask is None and self.capture_content

    def apply(self, kind: str, event: Event) -> Event:
        """The event as it may leave the process; ``kind`` is ``"event"`` or ``"llm"``.

        With no mask and content on, an event no limit bites is returned as it is: that is
        nearly every event, and checking it costs one C-encoder call.
        """
        if self.masks_nothing and _within_limits(kind, event):
            return event
        event = dict(event)
        properties = dict(event.get("properties") or {})
        ids = {k: properties.pop(k) for k in _IDS if k in properties}
        if not self.capture_content:
            properties.pop(sc.PROP_TEXT, None)
            if kind == "llm":
                event["prompt"] = event["generation"] = ""
        if self.mask is not None:
            if kind == "llm":
                event["prompt"] = self._masked(event.get("prompt"), "<masking failed>")
                event["generation"] = self._masked(event.get("generation"), "<masking failed>")
            properties = self._masked(properties, {})
            if not isinstance(properties, dict):
                properties = {"value": properties}
        if kind == "llm":
            for field in ("prompt", "generation"):
                event[field] = self._cut(_text(event.get(field)), MAX_TEXT_CHARS, field)
        properties = bound_properties(properties, self._log.warning)
        properties.update(ids)
        event["properties"] = properties
        return event

    def apply_all(self, events: list[Event], llm_events: list[Event]) -> tuple[list[Event], list[Event]]:
        """An encoded batch as it may leave: the one call of the exporter, the bridge and the server."""
        apply = self.apply
        return [apply("event", e) for e in events], [apply("llm", e) for e in llm_events]

    def _masked(self, value: Any, failed: Any) -> Any:
        try:
            return self.mask(value)  # type: ignore[misc]
        except Exception as exc:  # fail closed: the unmasked value never leaves
            self._log.error("mask", "mask= raised %s; the value is replaced", type(exc).__name__)
            return failed

    def _cut(self, text: str, limit: int, what: str) -> str:
        if len(text) <= limit:
            return text
        self._log.warning("text", "A %s longer than %d characters was truncated", what, limit)
        return truncate(text, limit)


_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
"""Strict JSON text: NaN and Infinity raise here rather than leave as invalid JSON."""


def _within_limits(kind: str, event: Event) -> bool:
    """True when no limit can bite: the properties' JSON is shorter than one string may be
    and has fewer brackets than the depth limit, and the texts are short strings."""
    if kind == "llm":
        for field in ("prompt", "generation"):
            text = event.get(field)
            if type(text) is not str or len(text) > MAX_TEXT_CHARS:
                return False
    properties = event.get("properties")
    if type(properties) is not dict:
        return False
    try:
        text = _compact(properties)
    except (TypeError, ValueError):
        return False
    return len(text) <= MAX_STRING_CHARS and text.count("{") + text.count("[") < MAX_DEPTH


def bound_properties(
    properties: dict[str, Any], warn: Callable[..., None] | None = None
) -> dict[str, Any]:
    """``properties`` within the string, depth and size limits (a copy when anything changed)."""
    notes: set[str] = set()
    bounded = _bound(properties, 0, notes)
    if not isinstance(bounded, dict):
        bounded = {"value": bounded}
    try:
        size = len(_compact(bounded))
    except (TypeError, ValueError):  # not JSON after all (only if a mask returned junk or inf)
        from trubrics_otel.jsonable import to_jsonable

        bounded = to_jsonable(bounded)
        size = len(_compact(bounded))
        notes.add("type")
    if size > MAX_PROPERTIES_CHARS:
        bounded = _fit(bounded)
        notes.add("size")
    if notes and warn is not None:
        for note in sorted(notes):
            warn(note, "Event properties over a limit were cut (%s); see trubrics_otel.redaction", note)
    return bounded


def _bound(value: Any, depth: int, notes: set[str]) -> Any:
    if isinstance(value, str):
        if len(value) > MAX_STRING_CHARS:
            notes.add("string")
            return truncate(value, MAX_STRING_CHARS)
        return value
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            notes.add("depth")
            return "<too deep>"
        return {_text(k): _bound(v, depth + 1, notes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            notes.add("depth")
            return "<too deep>"
        return [_bound(v, depth + 1, notes) for v in value]
    return value


def _fit(properties: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    budget = MAX_PROPERTIES_CHARS - 64
    dropped = 0
    for key, value in properties.items():
        cost = len(json.dumps({key: value}, ensure_ascii=False, separators=(",", ":")))
        if cost <= budget:
            kept[key] = value
            budget -= cost
        else:
            dropped += 1
    kept["$truncated_properties"] = dropped
    return kept


def _text(value: Any) -> str:
    """A string for any value, even one whose ``__str__`` raises."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<{type(value).__name__}>"


def truncate(text: str, limit: int) -> str:
    marker = f"…[truncated {len(text) - limit}]"
    return text[: max(0, limit - len(marker))] + marker


class RateLimitedLog:
    """Log each kind of message at most once per :data:`LOG_INTERVAL_S`, with a count."""

    def __init__(self, logger: logging.Logger, interval: float = LOG_INTERVAL_S) -> None:
        self._logger = logger
        self._interval = interval
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, key: str, message: str, *args: Any) -> None:
        self._log(logging.WARNING, key, message, args)

    def error(self, key: str, message: str, *args: Any) -> None:
        self._log(logging.ERROR, key, message, args)

    def _log(self, level: int, key: str, message: str, args: tuple[Any, ...]) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                self._quiet[key] = self._quiet.get(key, 0) + 1
                return
            self._last[key] = now
            quiet = self._quiet.pop(key, 0)
        if quiet:
            message += f" (and {quiet} more like it since the last report)"
        self._logger.log(level, message, *args)
