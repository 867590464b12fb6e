"""Who a span is for, inherited from any ancestor of the same trace: :class:`TraceMemory`.

A web handler's request span names the user; the LLM call three levels below it does not.
The encoder asks :meth:`TraceMemory.identity` for the span's user and thread: the span's own
values (:func:`own_identity`), else its nearest ancestor's, else its own *weak* thread (an id
the library made up per run, see ``WEAK_THREAD_SCOPES``)::

    memory = TraceMemory()                 # one per exporter / bridge / server intake
    memory.remember(spans)                 # a whole batch first: parents before children
    memory.identity(span)                  # Identity(user_id="u1", thread_id="t-42")

Ancestors are looked up among the spans remembered so far: this batch's and earlier ones'.
A child exported *before* its ancestor (the usual order: a parent ends last) gets the
ancestor's identity when both are in one batch, or when the app's process stamped it at span
start (``UserContextSpanProcessor``); a child sent in a batch before its ancestor's cannot.

Bounded: the :data:`MAX_TRACES` most recently seen traces, :data:`MAX_SPANS_PER_TRACE` spans
each (beyond that only spans that carry an identity are kept): about 110 bytes a span, so
under 30 MB when every trace is full, a few MB for traces of tens of spans. Pure: no threads, clock or I/O;
the holder serialises calls (the exporter and the bridge encode one batch at a time).
The same object remembers the model calls already sent, for :mod:`.duplicates`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from opentelemetry.sdk.trace import ReadableSpan

from trubrics_otel import semconv as sc
from trubrics_otel.translate.conventions import (
    METADATA_JSON_ATTRIBUTES,
    METADATA_THREAD_KEYS,
    METADATA_USER_KEYS,
    THREAD_ID_ATTRIBUTES,
    USER_ID_ATTRIBUTES,
    WEAK_THREAD_SCOPES,
    WRAPPER_PROMPT_ATTRIBUTES,
    LlmCall,
    first_of,
    is_call_view,
    wrapper_reply,
)
from trubrics_otel.translate.duplicates import CallIndex
from trubrics_otel.translate.messages import last_user_text, parse_json

MAX_TRACES = 1024
MAX_SPANS_PER_TRACE = 256
MAX_SENT_CALLS = 2048
"""Model calls remembered after sending, to drop a duplicate arriving in a later batch."""
_MAX_DEPTH = 256
_TRACE_ID, _SPAN_ID = 0, 1
"""Where a ``SpanContext`` (a tuple) holds its ids: read by index, not through its Python-level
properties, on every span this module and the encoder look at."""


class Identity(NamedTuple):
    """Who a span is for (a named tuple: one per span, cheaper than a frozen dataclass)."""

    user_id: str | None = None
    thread_id: str | None = None
    weak_thread_id: str | None = None
    """A thread any explicit one beats: used only when no span up the trace names one."""
    prompt: str | None = None
    """The last user text a framework wrapper recorded: the prompt of a call that has none."""

    def under(self, ancestor: Identity) -> Identity:
        """This span's identity with gaps filled from its ``ancestor``'s."""
        return Identity(
            self.user_id or ancestor.user_id,
            self.thread_id or ancestor.thread_id,
            self.weak_thread_id or ancestor.weak_thread_id,
            self.prompt or ancestor.prompt,
        )

    @property
    def thread(self) -> str | None:
        return self.thread_id or self.weak_thread_id


NOBODY = Identity()

_OWN_USER = tuple(a for a in USER_ID_ATTRIBUTES if a != sc.TRUBRICS_INHERITED_USER_ID)
_OWN_THREAD = tuple(a for a in THREAD_ID_ATTRIBUTES if a != sc.TRUBRICS_INHERITED_THREAD_ID)
_OWN_STRONG_THREAD = tuple(a for a in _OWN_THREAD if a != sc.GEN_AI_CONVERSATION_ID)


def is_weak_thread_scope(scope_name: str | None) -> bool:
    return bool(scope_name) and str(scope_name).startswith(WEAK_THREAD_SCOPES)


_ALL_KEYS = frozenset((*USER_ID_ATTRIBUTES, *THREAD_ID_ATTRIBUTES, *METADATA_JSON_ATTRIBUTES,
                       *WRAPPER_PROMPT_ATTRIBUTES, sc.TRUBRICS_INHERITED_WEAK_THREAD_ID))


_RANK = {name: rank for rank, name in enumerate((*USER_ID_ATTRIBUTES, *THREAD_ID_ATTRIBUTES))}


def _ranked(present: frozenset[str], names: tuple[str, ...]) -> tuple[str, ...]:
    """The ``names`` the span has (``present``), in their order of precedence."""
    return tuple(sorted((name for name in present if name in names), key=_RANK.__getitem__))


class _Plan(NamedTuple):
    """What :func:`own_identity` reads, for one combination of the attributes it knows."""

    users: tuple[str, ...]
    threads: tuple[str, ...]
    strong_threads: tuple[str, ...]
    """``threads`` less ``gen_ai.conversation.id``: a weak scope's thread is read apart."""
    metadata: bool
    inherited_user: bool
    inherited_thread: bool
    conversation: bool
    inherited_weak: bool
    prompt: bool


def _plan(present: frozenset[str]) -> _Plan:
    return _Plan(
        _ranked(present, _OWN_USER), _ranked(present, _OWN_THREAD), _ranked(present, _OWN_STRONG_THREAD),
        not present.isdisjoint(METADATA_JSON_ATTRIBUTES), sc.TRUBRICS_INHERITED_USER_ID in present,
        sc.TRUBRICS_INHERITED_THREAD_ID in present, sc.GEN_AI_CONVERSATION_ID in present,
        sc.TRUBRICS_INHERITED_WEAK_THREAD_ID in present, not present.isdisjoint(WRAPPER_PROMPT_ATTRIBUTES),
    )


_PLANS: dict[frozenset[str], _Plan] = {}
"""By which known attributes a span has: a few combinations per library."""


def own_identity(attributes: Mapping[str, Any], scope_name: str | None = None) -> Identity:
    """The user and thread the span names itself (or was stamped with at start)."""
    present = _ALL_KEYS.intersection(attributes)  # one pass over the span's keys, in C
    if not present:  # most spans
        return NOBODY
    plan = _PLANS.get(present)
    if plan is None:
        if len(_PLANS) > 1024:
            _PLANS.clear()
        plan = _PLANS[present] = _plan(present)
    # only a span with gen_ai.conversation.id has threads that a weak scope reads apart
    weak_scope = plan.conversation and is_weak_thread_scope(scope_name)
    users = plan.users
    if users:  # first_of, its usual case inline: one name present, a text no scrubber blanked
        user = attributes[users[0]]
        if user.__class__ is not str or not user or user[0] == "[" or user == "null":
            user = first_of(attributes, users)
    else:
        user = None
    threads = plan.strong_threads if weak_scope else plan.threads
    if threads:
        thread = attributes[threads[0]]
        if thread.__class__ is not str or not thread or thread[0] == "[" or thread == "null":
            thread = first_of(attributes, threads)
    else:
        thread = None
    if (user is None or thread is None) and plan.metadata:
        metadata_user, metadata_thread = _metadata_identity(attributes)
        user = user or metadata_user
        thread = thread or metadata_thread
    if not user and plan.inherited_user:
        user = first_of(attributes, (sc.TRUBRICS_INHERITED_USER_ID,))
    if not thread and plan.inherited_thread:
        thread = first_of(attributes, (sc.TRUBRICS_INHERITED_THREAD_ID,))
    weak = first_of(attributes, (sc.GEN_AI_CONVERSATION_ID,)) if weak_scope else None
    if not weak and plan.inherited_weak:
        weak = first_of(attributes, (sc.TRUBRICS_INHERITED_WEAK_THREAD_ID,))
    prompt = _wrapper_prompt(attributes) if plan.prompt else None
    return _new_identity(Identity, (user or None, thread or None, weak or None, prompt))


_new_identity = tuple.__new__  # Identity(...) without NamedTuple's Python-level __new__


def _wrapper_prompt(attributes: Mapping[str, Any]) -> str | None:
    for name in WRAPPER_PROMPT_ATTRIBUTES:
        if name not in attributes:
            continue
        recorded = parse_json(attributes[name])
        if isinstance(recorded, Mapping):  # Vercel: {"system"?, "prompt"} or {"messages"}
            recorded = recorded.get("messages") if "messages" in recorded else recorded.get("prompt")
        text = recorded if isinstance(recorded, str) else last_user_text(recorded)
        if text:
            return text
    return None


def _metadata_identity(attributes: Mapping[str, Any]) -> tuple[str | None, str | None]:
    for name in METADATA_JSON_ATTRIBUTES:
        metadata = parse_json(attributes.get(name))
        if isinstance(metadata, Mapping):
            user = _scalar(metadata, METADATA_USER_KEYS)
            thread = _scalar(metadata, METADATA_THREAD_KEYS)
            if user or thread:
                return user, thread
    return None, None


def _scalar(mapping: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def span_identity(span: ReadableSpan) -> Identity:
    scope = span.instrumentation_scope
    return own_identity(span.attributes or {}, scope.name if scope is not None else None)


class TraceMemory:
    """Per-trace parent links and identities, and the model calls already sent; bounded LRU."""

    def __init__(self, max_traces: int = MAX_TRACES, max_spans_per_trace: int = MAX_SPANS_PER_TRACE,
                 max_sent_calls: int = MAX_SENT_CALLS) -> None:
        self._traces: OrderedDict[int, dict[int, tuple[int, Identity, LlmCall | None]]] = OrderedDict()
        self._call_views: OrderedDict[tuple[int, int], set[int]] = OrderedDict()
        self._max_traces = max_traces
        self._max_spans = max_spans_per_trace
        self.sent_calls = CallIndex(max_sent_calls)
        """The model calls sent (:class:`.duplicates.CallSignature`), to drop a later view."""

    def remember(self, spans: Iterable[ReadableSpan]) -> None:
        for span in spans:
            context = span.context
            if context is None:
                continue
            try:
                attributes = span.attributes or {}  # read once: the SDK's builds a proxy per read
                scope = span.instrumentation_scope
                own = own_identity(attributes, scope.name if scope is not None else None)
                reply = wrapper_reply(attributes)
            except Exception:  # an odd span is encoded (and reported) by the encoder, not here
                continue
            trace_id, span_id = context[_TRACE_ID], context[_SPAN_ID]
            trace = self._traces.get(trace_id)
            if trace is None:
                trace = self._traces[trace_id] = {}
                while len(self._traces) > self._max_traces:
                    self._traces.popitem(last=False)
            else:
                self._traces.move_to_end(trace_id)
            if len(trace) >= self._max_spans and own == NOBODY and reply is None:
                continue
            parent = span.parent[_SPAN_ID] if span.parent is not None else 0
            trace[span_id] = (parent, own, reply)
            if parent and is_call_view(span):
                self._call_views.setdefault((trace_id, parent), set()).add(span_id)
                while len(self._call_views) > self._max_traces:
                    self._call_views.popitem(last=False)

    def identity(self, span: ReadableSpan) -> Identity:
        """The span's own identity, gaps filled from its ancestors' (nearest first)."""
        context = span.context
        trace = self._traces.get(context[_TRACE_ID], {}) if context is not None else {}
        remembered = trace.get(context[_SPAN_ID]) if context is not None else None
        identity = remembered[1] if remembered is not None else span_identity(span)
        if span.parent is None:
            return identity
        parent_id = span.parent[_SPAN_ID]
        for _ in range(_MAX_DEPTH):
            if identity.user_id and identity.thread_id:
                break
            found = trace.get(parent_id)
            if found is None:
                break
            parent_id, ancestor, _ = found
            identity = identity.under(ancestor)
            if not parent_id:
                break
        return identity

    def call_views(self, span: ReadableSpan) -> int:
        """How many children repeat one call of this span's (see ``is_call_view``)."""
        if not self._call_views or span.context is None:  # nearly always: no LiteLLM raw spans
            return 0
        return len(self._call_views.get((span.context.trace_id, span.context.span_id), ()))

    def parent_reply(self, span: ReadableSpan) -> LlmCall | None:
        """The reply the span's parent recorded for it (see ``wrapper_reply``), if any."""
        if span.context is None or span.parent is None:
            return None
        found = self._traces.get(span.context.trace_id, {}).get(span.parent.span_id)
        return found[2] if found is not None else None

    def __len__(self) -> int:
        return len(self._traces)
