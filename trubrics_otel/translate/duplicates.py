"""Exactly one LLM event per model call, when two instrumentations saw the same call.

With a framework's instrumentation and a provider SDK's both installed (OpenInference's
LangChain + OpenLLMetry's OpenAI, any Anthropic instrumentation + the ``anthropic`` SDK's own
spans, LiteLLM's raw request span…), one model call gives two LLM spans: nested, siblings,
or even in different traces. Two LLM spans are the **same call** when:

* their time intervals nest (one lies within the other, :data:`CLOCK_SLACK_NS` allowed), and
* their models agree (equal, or one a prefix of the other: ``gpt-4o-mini`` and the dated
  ``gpt-4o-mini-2024-07-18``, ``openai/gpt-4o-mini``), and
* nothing tells them apart: not two different response ids, not two different non-empty
  prompts, not two spans of one library side by side (one library makes one span per call);
* and either one is the other's parent or they share a parent, or, elsewhere in the trace or in
  another trace, positive evidence agrees: the same response id (an attribute, or what a reader
  found in a reply's JSON: ``$response_id``, taken out here), or the same non-empty prompt,
  or, for two ROOT spans (OpenLLMetry's Anthropic span and the SDK's own land in two traces with
  no shared id), the same provider and the same input and output token counts.

The merged event is the richer reader's (a prompt and a generation count most; then the
outer span, the one nearer the app's intent), gaps filled from the other, its model the other's
dated snapshot of it if the other has one (a stream's span keeps the alias); token counts and
time to first token come from the inner span when it has them (it is the one that saw the
provider's own numbers). Calls already sent are remembered in the :class:`TraceMemory`; a
later duplicate is dropped. Both count as ``merged_duplicates``::

    calls = [(signature(span, event), event) for span, event in llm_events_of_a_batch]
    events, merged = one_event_per_call(calls, memory)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions.base import UNKNOWN_ERROR_TYPE

if TYPE_CHECKING:
    from trubrics_otel.translate.traces import TraceMemory

Event = dict[str, Any]

CLOCK_SLACK_NS = 5_000_000
"""Spans timed by different libraries (a JS SDK starts spans at millisecond resolution)."""

_USAGE_PROPERTIES = (
    sc.PROP_INPUT_TOKENS, sc.PROP_OUTPUT_TOKENS, sc.PROP_TOTAL_TOKENS,
    sc.PROP_CACHE_READ_INPUT_TOKENS, sc.PROP_CACHE_CREATION_INPUT_TOKENS, sc.PROP_REASONING_TOKENS,
)
_USAGE_PROPERTY_NAMES = frozenset(_USAGE_PROPERTIES)
_IDS = (sc.PROP_TRACE_ID, sc.PROP_SPAN_ID, sc.PROP_PARENT_SPAN_ID)


class CallSignature(NamedTuple):
    """What one LLM span says about its call, enough to recognise another view of it.
    (A named tuple: built for every LLM span, at less than half a frozen dataclass's cost.)"""

    trace_id: int
    span_id: int
    parent_id: int
    start: int
    end: int
    scope: str
    models: tuple[str, ...]
    response_id: str | None
    prompt: int
    """``hash()`` of the prompt text (0: none): equal texts, equal keys; kept small in memory."""
    richness: int
    usage: int = 0
    """A content-less root span's ``hash()`` of (provider, input tokens, output tokens); 0: not
    a root, a prompt (the stronger evidence), or no counts. Evidence for two root views of one
    call that share nothing else."""


def signature(span: ReadableSpan, event: Event) -> CallSignature:
    attributes = span.attributes or {}
    context = span.context
    scope = span.instrumentation_scope
    names = assistant, request, response = (event.get("assistant_id"), attributes.get(sc.GEN_AI_REQUEST_MODEL),
                                            attributes.get(sc.GEN_AI_RESPONSE_MODEL))
    if _TEXT.get(assistant.__class__) and _TEXT.get(request.__class__) and _TEXT.get(response.__class__):
        models = _MODELS.get(names)
        if models is None:
            if len(_MODELS) > 1024:
                _MODELS.clear()
            models = _MODELS[names] = _model_keys(names)
    else:
        models = _model_keys(names)
    properties = event.get("properties") or {}
    found = properties.pop(sc.PROP_RESPONSE_ID, None) if sc.PROP_RESPONSE_ID in properties else None
    response_id = attributes.get(sc.GEN_AI_RESPONSE_ID) or attributes.get("ai.response.id") or found
    prompt = event.get("prompt")
    start = span.start_time or 0
    usage = 0
    parent = span.parent
    if parent is None and not prompt:  # only content-less roots need this evidence
        counts = (properties.get(sc.PROP_INPUT_TOKENS), properties.get(sc.PROP_OUTPUT_TOKENS))
        if any(counts):
            usage = hash((properties.get(sc.PROP_PROVIDER), *counts))
    return _new_signature(CallSignature, (  # the fields in order, without NamedTuple's keyword call
        context[0] if context else 0,  # trace id and span id: a SpanContext is a tuple (see .traces)
        context[1] if context else 0,
        parent[1] if parent is not None else 0,
        start,
        span.end_time or start,
        scope.name if scope is not None else "",
        models,
        str(response_id) if response_id else None,
        hash(prompt) if prompt else 0,
        2 * bool(prompt) + 2 * bool(event.get("generation")) + len(_USAGE_PROPERTY_NAMES.intersection(properties)),
        usage,
    ))


_new_signature = tuple.__new__


def _model_keys(names: tuple[Any, ...]) -> tuple[str, ...]:
    """The keys of the model names among ``names`` (the event's, the request's and the
    response's model), each once, sorted."""
    models: list[str] = []
    for model in names:
        if model.__class__ is str and model:
            key = _model_key(model)
            if key not in models:
                models.append(key)
    return tuple(sorted(models)) if len(models) > 1 else tuple(models)


_TEXT = {str: True, type(None): True}
"""The classes of model names whose keys :data:`_MODELS` keeps (an equal ``str`` subclass, a
``str`` enum, is no model name: it must not find the keys of the text it equals)."""
_MODELS: dict[tuple[Any, ...], tuple[str, ...]] = {}
"""A call's three model names → their keys: the same few triples in every batch."""


def _model_key(model: str) -> str:
    key = _MODEL_KEYS.get(model)
    if key is None:
        if len(_MODEL_KEYS) > 1024:
            _MODEL_KEYS.clear()
        key = _MODEL_KEYS[model] = model.rpartition("/")[2].lower()
    return key


_MODEL_KEYS: dict[str, str] = {}
"""Model name → its key: the same few names in every batch."""


def same_call(a: CallSignature, b: CallSignature) -> bool:
    if a.trace_id == b.trace_id and a.span_id == b.span_id:
        return True
    same_trace = a.trace_id == b.trace_id
    parent_and_child = same_trace and (a.parent_id == b.span_id or b.parent_id == a.span_id)
    if a.scope and a.scope == b.scope and not parent_and_child:
        return False  # one library makes one span per call: the cheapest "no" first
    outer, inner = (a, b) if a.end - a.start >= b.end - b.start else (b, a)
    if not (outer.start - CLOCK_SLACK_NS <= inner.start and inner.end <= outer.end + CLOCK_SLACK_NS):
        return False
    if a.models and b.models and not any(
        x.startswith(y) or y.startswith(x) for x in a.models for y in b.models
    ):
        return False
    if a.response_id and b.response_id and a.response_id != b.response_id:
        return False
    if a.prompt and b.prompt and a.prompt != b.prompt:
        return False
    if parent_and_child or (same_trace and a.parent_id == b.parent_id):
        return True
    if same_trace and inner.scope in PROVIDER_SDK_SCOPES and not inner.prompt and not outer.response_id:
        return True  # the SDK's own span of a call whose framework span was not current
    return bool((a.response_id and a.response_id == b.response_id) or (a.prompt and a.prompt == b.prompt)
                or (a.usage and a.usage == b.usage))


PROVIDER_SDK_SCOPES = frozenset({"com.anthropic.sdk.python"})
"""Provider SDKs that trace their own API calls (metadata only, by default). Under LangGraph,
OpenInference's LLM span is never the current span, so the SDK's span of the same call is no
child of it and, in a stream, nothing else names the call: lying within that LLM span, in its
trace, with the same model, it is taken as that call (unless the framework's span names another
response id)."""


def merge(a: tuple[CallSignature, Event], b: tuple[CallSignature, Event]) -> tuple[CallSignature, Event]:
    """One event for two views of a call: the richer's fields, gaps filled from the other;
    usage and time to first token from the inner view when it has them."""
    winner, loser = sorted((a, b), key=lambda view: (-view[0].richness, view[0].start, -view[0].end))
    _, inner = sorted((a, b), key=lambda view: (view[0].start, -view[0].end))
    merged = dict(winner[1])
    for field in ("prompt", "generation", "assistant_id", "thread_id", "latency"):
        if not merged.get(field) and loser[1].get(field):
            merged[field] = loser[1][field]
    if merged.get("user_id") in (None, sc.ANONYMOUS_USER_ID):
        merged["user_id"] = loser[1].get("user_id") or merged.get("user_id")
    if _is_dated(loser[1].get("assistant_id"), merged.get("assistant_id")):
        merged["assistant_id"] = loser[1]["assistant_id"]  # the response model, not the request's
    properties = dict(winner[1].get("properties") or {})
    for key, value in (loser[1].get("properties") or {}).items():
        if key not in _IDS and properties.get(key) is None:
            properties[key] = value
    if properties.get(sc.PROP_ERROR_TYPE) == UNKNOWN_ERROR_TYPE:  # the other view may name it
        properties[sc.PROP_ERROR_TYPE] = (loser[1].get("properties") or {}).get(
            sc.PROP_ERROR_TYPE) or UNKNOWN_ERROR_TYPE
    measured: Mapping[str, Any] = inner[1].get("properties") or {}
    if sc.PROP_INPUT_TOKENS in measured or sc.PROP_OUTPUT_TOKENS in measured:
        properties.update({key: measured[key] for key in _USAGE_PROPERTIES if key in measured})
    if measured.get(sc.PROP_TIME_TO_FIRST_TOKEN) is not None:
        properties[sc.PROP_TIME_TO_FIRST_TOKEN] = measured[sc.PROP_TIME_TO_FIRST_TOKEN]
    merged["properties"] = properties
    first, second = a[0], b[0]
    return (
        winner[0]._replace(start=min(first.start, second.start), end=max(first.end, second.end),
                models=tuple(sorted({*first.models, *second.models})),
                response_id=first.response_id or second.response_id,
                prompt=first.prompt or second.prompt,
                richness=max(first.richness, second.richness),
                usage=first.usage or second.usage),
        merged,
    )


def _is_dated(model: Any, alias: Any) -> bool:
    """``model`` is ``alias`` resolved to a dated snapshot (``claude-sonnet-4-5-20250929`` of
    ``claude-sonnet-4-5``): what the provider answered, where a stream's span kept the request."""
    if not (isinstance(model, str) and isinstance(alias, str) and alias and model.startswith(alias)):
        return False
    rest = model[len(alias):]
    return rest[:1] in ("-", "@") and any(c.isdigit() for c in rest)


MAX_CANDIDATES_PER_KEY = 32


class CallIndex:
    """Call signatures, found by what could make two of them one call: the same trace, the
    same response id or the same prompt (:func:`same_call` needs one of the three). Bounded:
    the oldest goes first beyond ``limit``."""

    def __init__(self, limit: int | None = None) -> None:
        self._limit = limit
        self._order: deque[CallSignature] = deque()
        self._spans: set[tuple[int, int]] = set()
        # one dict per kind of key, so a lookup builds no key tuple
        self._by_trace: dict[int, list[CallSignature]] = {}
        self._by_response: dict[str, list[CallSignature]] = {}
        self._by_prompt: dict[int, list[CallSignature]] = {}
        self._by_usage: dict[int, list[CallSignature]] = {}

    def candidates(self, call: CallSignature) -> list[CallSignature]:
        """The most recent :data:`MAX_CANDIDATES_PER_KEY` calls of each key: two views of one
        call arrive together, and a popular prompt ("hi") must not cost a scan of every
        call remembered."""
        found = self._by_trace.get(call.trace_id)
        found = found[-MAX_CANDIDATES_PER_KEY:] if found else []
        for by, key in ((self._by_response, call.response_id), (self._by_prompt, call.prompt),
                        (self._by_usage, call.usage)):
            more = by.get(key) if key else None
            if more:
                if found:
                    seen = {id(c) for c in found}
                    found += [c for c in more[-MAX_CANDIDATES_PER_KEY:] if id(c) not in seen]
                else:
                    found = more[-MAX_CANDIDATES_PER_KEY:]
        return found

    def has_another_view(self, call: CallSignature) -> bool:
        """Whether a call here is ``call`` seen through another span (the same span again is
        a retried request, not a duplicate: it is sent again, receivers drop it by its ids).

        :func:`same_call` on each of :meth:`candidates`, without building their list. Most
        candidates share only a prompt ("hi") with ``call`` and are another trace's span of
        the same library: ruled out here without a call (one library makes one span per
        call, :func:`same_call`'s first "no")."""
        trace_id, span_id, scope = call.trace_id, call.span_id, call.scope
        same_trace = self._by_trace.get(trace_id)
        if same_trace:
            for other in same_trace[-MAX_CANDIDATES_PER_KEY:]:
                if other.span_id != span_id and same_call(call, other):
                    return True
        for by, key in ((self._by_response, call.response_id), (self._by_prompt, call.prompt),
                        (self._by_usage, call.usage)):
            more = by.get(key) if key else None
            if more:
                for other in more[-MAX_CANDIDATES_PER_KEY:]:
                    if other.trace_id != trace_id:
                        if scope and other.scope == scope:
                            continue
                    elif other.span_id == span_id:
                        continue
                    if same_call(call, other):
                        return True
        return False

    def has_span(self, call: CallSignature) -> bool:
        return (call.trace_id, call.span_id) in self._spans

    def add(self, call: CallSignature) -> None:
        span = (call.trace_id, call.span_id)
        if span in self._spans:
            return
        self._order.append(call)
        self._spans.add(span)
        self._by_trace.setdefault(call.trace_id, []).append(call)
        if call.response_id:
            self._by_response.setdefault(call.response_id, []).append(call)
        if call.prompt:
            self._by_prompt.setdefault(call.prompt, []).append(call)
        if call.usage:
            self._by_usage.setdefault(call.usage, []).append(call)
        if self._limit is not None and len(self._order) > self._limit:
            self.remove(self._order[0])

    def remove(self, call: CallSignature) -> None:
        if self._order[0] is call:  # the oldest: eviction, the usual case
            self._order.popleft()
        else:
            self._order.remove(call)
        self._spans.discard((call.trace_id, call.span_id))
        _discard(self._by_trace, call.trace_id, call)
        if call.response_id:
            _discard(self._by_response, call.response_id, call)
        if call.prompt:
            _discard(self._by_prompt, call.prompt, call)
        if call.usage:
            _discard(self._by_usage, call.usage, call)

    def __len__(self) -> int:
        return len(self._order)


def _discard(by: dict[Any, list[CallSignature]], key: Any, call: CallSignature) -> None:
    entries = by.get(key)
    if entries is not None:
        if entries[0] is call:
            del entries[0]
        else:
            entries.remove(call)
        if not entries:
            del by[key]


def one_event_per_call(
    calls: list[tuple[CallSignature, Event]], memory: TraceMemory
) -> tuple[list[Event], int]:
    """This batch's LLM events, duplicates merged and calls sent before dropped; and how many
    events that removed. The kept calls are remembered as sent."""
    sent: CallIndex = memory.sent_calls
    kept: dict[int, tuple[CallSignature, Event]] = {}  # by id() of its signature
    batch = CallIndex() if _may_repeat(calls) else None
    removed = 0
    for call in sorted(calls, key=_start):
        signature = call[0]
        if sent.has_another_view(signature):
            removed += 1
            continue
        if batch is None:  # no two calls of this batch can be one
            kept[id(signature)] = call
            continue
        for other in batch.candidates(signature):
            if same_call(signature, other):
                merged = merge(kept.pop(id(other)), call)
                batch.remove(other)
                batch.add(merged[0])
                kept[id(merged[0])] = merged
                removed += 1
                break
        else:
            batch.add(signature)
            kept[id(signature)] = call
    events = []
    # without merges, ``kept`` holds the calls in the order sorted above: no second sort
    for signature, event in sorted(kept.values(), key=_start) if removed else kept.values():
        sent.add(signature)
        events.append(event)
    return events, removed


def _may_repeat(calls: list[tuple[CallSignature, Event]]) -> bool:
    """Whether two of the calls share a trace (through two libraries, or as parent and child),
    a response id, a prompt or a root's usage: :func:`same_call` needs one of them, so
    otherwise the search for duplicates within the batch is skipped (a batch of one-call
    traces as chat apps send them, or of agents' calls through one library)."""
    traces: dict[int, list[CallSignature]] = {}
    responses: set[str] = set()
    prompts: set[int] = set()
    usages: set[int] = set()
    for signature, _ in calls:
        same_trace = traces.get(signature.trace_id)
        if same_trace is None:
            traces[signature.trace_id] = [signature]
        else:
            for other in same_trace:
                if _may_be_one(signature, other):
                    return True
            same_trace.append(signature)  # an agent's calls one after the other: one library, siblings
        if signature.response_id:
            if signature.response_id in responses:
                return True
            responses.add(signature.response_id)
        if signature.prompt:
            if signature.prompt in prompts:
                return True
            prompts.add(signature.prompt)
        if signature.usage:
            if signature.usage in usages:
                return True
            usages.add(signature.usage)
    return False


def _may_be_one(a: CallSignature, b: CallSignature) -> bool:
    """Two calls of one trace that :func:`same_call` does not rule out by their ids and scopes
    alone (one library makes one span per call)."""
    return (a.span_id == b.span_id or not a.scope or a.scope != b.scope
            or a.parent_id == b.span_id or b.parent_id == a.span_id)


def _start(view: tuple[CallSignature, Event]) -> int:
    return view[0].start
