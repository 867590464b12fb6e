"""The official SDK's arguments, checked and normalised into a record body; never raising.

::

    body = event_body("u1", "Sign up", {"plan": "pro"}, None, logger)      # or None (logged)
    body = llm_body("u1", "Hi?", "Hello.", "Prompt", "Generation", "gpt-4o", None, None,
                    1.2, "t-42", logger)
    interval_s, batch_size, max_queue = batching(None, 50, None)    # OTEL_BSP_* fill the gaps

A body is a plain tuple in the order of :data:`~trubrics_otel.translate.tracked.EVENT_FIELDS`
or :data:`~trubrics_otel.translate.tracked.LLM_FIELDS`. These run on the app's thread for every
``track`` call, so the common case (strings as documented) is checked with ``__class__ is``
tests before anything slower. A ``user_id`` not given (None) is the enclosing ``user_context``'s.
Bad input is logged, never raised: a ``user_id`` or ``event``
that is not a non-empty string (an ``int`` is taken as its text) skips the event; a bad
``timestamp`` keeps the event at the current time; a bad ``latency`` is sent as unknown.
"""

from __future__ import annotations

import datetime as _dt
import logging
import time
from collections.abc import Mapping
from typing import Any

from trubrics_otel import semconv as sc
from trubrics_otel import settings
from trubrics_otel.capture.context import current_user_context

Properties = Mapping[str, Any]
MAX_LATENCY_S = 86_400
DEFAULT_FLUSH_INTERVAL_S = 10.0
DEFAULT_FLUSH_BATCH_SIZE = 20

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MICROSECOND = _dt.timedelta(microseconds=1)
_USAGE_PROPERTIES = (
    ("input_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("prompt_tokens", sc.GEN_AI_USAGE_INPUT_TOKENS),
    ("output_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("completion_tokens", sc.GEN_AI_USAGE_OUTPUT_TOKENS),
)
_USAGE_KEYS = frozenset(prop for prop, _ in _USAGE_PROPERTIES)
LLM_PROPERTIES_READ = _USAGE_KEYS | {sc.PROP_THREAD_ID, sc.PROP_ASSISTANT_ID}
"""The properties :func:`llm_body` reads (a call whose properties have none of them has
them copied as they are)."""


def event_body(
    user_id: Any, event: Any, properties: Properties | None, timestamp: Any, logger: logging.Logger
) -> tuple[Any, ...] | None:
    """A product event's record body, or None (logged) for input that cannot be one."""
    if not (user_id.__class__ is str and event.__class__ is str and user_id and event):
        user, name = identifier(context_user(user_id)), identifier(event)
        if user is None or name is None:
            logger.error(
                "track() skipped: user_id (or an enclosing user_context(user_id=...)) and event must be "
                "non-empty strings, got %r and %r", type(user_id).__name__, type(event).__name__,
            )
            return None
        user_id, event = user, name
    return (
        user_id,
        event,
        properties or None,  # as given: to_bytes or with_json_properties snapshot it
        time.time_ns() if timestamp is None else time_ns(timestamp, logger),
    )


def llm_body(
    user_id: Any,
    prompt: Any,
    generation: Any,
    prompt_event_name: Any,
    generation_event_name: Any,
    assistant_id: Any,
    properties: Properties | None,
    timestamp: Any,
    latency: Any,
    thread_id: Any,
    logger: logging.Logger,
) -> tuple[Any, ...] | None:
    """An LLM exchange's record body, or None (logged) for input that cannot be one.

    ``$thread_id`` / ``$assistant_id`` fill ``thread_id`` / ``assistant_id`` when those are
    not given; token counts in the properties (``input_tokens``, ``prompt_tokens``…) become
    the span's GenAI usage attributes."""
    user = user_id if user_id.__class__ is str and user_id else identifier(context_user(user_id))
    if user is None:
        logger.error(
            "track_llm() skipped: user_id (or an enclosing user_context(user_id=...)) must be a non-empty "
            "string, got %r", type(user_id).__name__
        )
        return None
    props = properties or {}
    thread = thread_id if thread_id is not None else props.get(sc.PROP_THREAD_ID)
    model = assistant_id if assistant_id is not None else props.get(sc.PROP_ASSISTANT_ID)
    usage = None
    if props and not _USAGE_KEYS.isdisjoint(props):
        usage = {attr: props[prop] for prop, attr in _USAGE_PROPERTIES if type(props.get(prop)) is int}
    if not ((latency.__class__ is float or latency.__class__ is int) and 0 <= latency <= MAX_LATENCY_S):
        latency = _latency(latency, logger)
    # The checks inlined for text (nearly always): a call each would be a fifth of track_llm().
    return (
        user,
        prompt if prompt.__class__ is str else _text(prompt),
        generation if generation.__class__ is str else _text(generation),
        prompt_event_name if prompt_event_name.__class__ is str else _name(prompt_event_name),
        generation_event_name if generation_event_name.__class__ is str else _name(generation_event_name),
        None if model is None else model if model.__class__ is str else _name(model),
        props or None,
        time.time_ns() if timestamp is None else time_ns(timestamp, logger),
        latency,
        None if thread is None or thread == "" else thread if thread.__class__ is str else _name(thread),
        usage,
    )


def time_ns(timestamp: Any, logger: logging.Logger) -> int:
    """A datetime (naive = UTC, as the official SDK's server reads it), date, ISO string or
    epoch seconds as epoch nanoseconds; the current time (logged) for anything else."""
    if timestamp is None:
        return time.time_ns()
    try:
        if isinstance(timestamp, str):
            timestamp = _dt.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        if isinstance(timestamp, _dt.datetime):
            if timestamp.tzinfo is None:
                timestamp = timestamp.replace(tzinfo=_dt.timezone.utc)
            return ((timestamp - _EPOCH) // _MICROSECOND) * 1000
        if isinstance(timestamp, _dt.date):
            return time_ns(_dt.datetime.combine(timestamp, _dt.time()), logger)
        if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool):
            return int(timestamp * 1e9)
    except (ValueError, OverflowError):
        pass
    logger.error("Invalid timestamp %r: using the current time instead", timestamp)
    return time.time_ns()


def context_user(user_id: Any) -> Any:
    """``user_id``, or when it is not given (None) the enclosing ``user_context``'s user: inside
    ``user_context(user_id="u1")``, ``track(event="Sign up")`` is u1's (off the hot path: a plain
    call gives a string)."""
    if user_id is None:
        scope = current_user_context()
        return None if scope is None else scope.user_id
    return user_id


def identifier(value: Any) -> str | None:
    """A usable id or event name: a non-empty string (an int is taken as its text)."""
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _text(value: Any) -> str:
    """A prompt or generation as text: None is empty."""
    if value.__class__ is str:
        return value
    return "" if value is None else str(value)


def _name(value: Any) -> str:
    return value if value.__class__ is str else str(value)


def _latency(latency: Any, logger: logging.Logger) -> float | None:
    if latency is None:
        return None
    if isinstance(latency, (int, float)) and not isinstance(latency, bool) and 0 <= latency <= MAX_LATENCY_S:
        return float(latency)
    logger.error("Invalid latency %r: must be seconds, 0 to %d; sent as unknown", latency, MAX_LATENCY_S)
    return None


def batching(flush_interval: Any, batch_size: Any, max_queue_size: Any) -> tuple[float, int, int]:
    """The client's schedule (s), export batch size and memory queue bound: each argument that is
    a positive number, else its ``OTEL_BSP_*`` setting, else the official SDK's 10 s and 20; the
    queue holds a batch at least."""
    interval = float(_positive(flush_interval) or settings.read(settings.SCHEDULE_DELAY) or DEFAULT_FLUSH_INTERVAL_S)
    batch = int(_positive(batch_size) or settings.read(settings.MAX_EXPORT_BATCH_SIZE) or DEFAULT_FLUSH_BATCH_SIZE)
    return interval, batch, max(batch, settings.read(settings.MAX_QUEUE_SIZE, max_queue_size))


def _positive(value: Any) -> float | None:
    """An argument that is a positive number, else None (the setting's fallback applies)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None
