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

import logging
from collections.abc import Callable
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel.logs import RateLimitedLog
from trubrics_otel.translate.fastjson import brackets, measure
from trubrics_otel.translate.jsonable import (
    MAX_DEPTH,
    MAX_STRING_CHARS,
    MAX_TEXT_CHARS,
    bound_properties,
    text_of,
    truncate,
)

_IDS = (sc.PROP_TRACE_ID, sc.PROP_SPAN_ID, sc.PROP_PARENT_SPAN_ID)

Mask = Callable[[Any], Any]
Event = dict[str, Any]


class Policy:
    def __init__(
        self,
        mask: Mask | None = None,
        capture_content: bool | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.mask = mask
        self.capture_content = True if capture_content is None else capture_content
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
        if self.masks_nothing and _within_limits(kind, event) is not None:
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
                event[field] = self._cut(text_of(event.get(field)), MAX_TEXT_CHARS, field)
        properties = bound_properties(properties, self._log.warning)
        properties.update(ids)
        event["properties"] = properties
        return event

    def apply_all(self, events: list[Event], llm_events: list[Event],
                  measured: dict[int, bytes] | None = None) -> tuple[list[Event], list[Event]]:
        """An encoded batch as it may leave: the one call of the exporter, the bridge and the server.

        ``measured``: filled with ``{id(event): its properties' JSON}`` for each event that
        leaves as it came (no limit bit), so a later check need not encode them again."""
        apply = self.apply
        if not self.masks_nothing:
            return [apply("event", e) for e in events], [apply("llm", e) for e in llm_events]
        if measured is None:
            measured = {}
        kept: tuple[list[Event], list[Event]] = ([], [])
        for kind, found, into in (("event", events, kept[0]), ("llm", llm_events, kept[1])):
            for event in found:
                data = _within_limits(kind, event)  # the check apply() starts with
                if data is None:
                    into.append(apply(kind, event))
                    continue
                measured[id(event)] = data
                into.append(event)
        return kept

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


def _within_limits(kind: str, event: Event) -> bytes | None:
    """The properties' JSON when no limit can bite: it is shorter than one string may be
    and has fewer brackets than the depth limit, and the texts are short strings; else None."""
    if kind == "llm":
        prompt, generation = event.get("prompt"), event.get("generation")
        if (prompt.__class__ is not str or len(prompt) > MAX_TEXT_CHARS
                or generation.__class__ is not str or len(generation) > MAX_TEXT_CHARS):
            return None
    properties = event.get("properties")
    if type(properties) is not dict:
        return None
    try:
        data = measure(properties)  # orjson when installed: a tenth of the cost
    except (TypeError, ValueError):
        return None
    # UTF-8 bytes are never fewer than characters: the check is, if anything, stricter
    if len(data) <= MAX_STRING_CHARS and brackets(data) < MAX_DEPTH:
        return data
    return None
