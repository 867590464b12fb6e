"""Who the current work is for: ``user_context``, stamped on every span started inside it.

Instrumentation libraries rarely know the end user or the conversation, yet per-user
analytics need both on every LLM span. ``user_context`` records them in a context variable
and :class:`UserContextSpanProcessor` copies them onto each span as it starts, the
instrumentation's own spans included::

    from trubrics_otel import configure, user_context

    configure(tracer_provider=provider, api_key="...")

    with user_context(user_id="u1", thread_id="t-42", properties={"plan": "pro"}):
        client.chat.completions.create(...)   # its span carries user.id, the thread, the plan

    @user_context(user_id="u1")                # or as a decorator, sync or async
    async def answer(question: str) -> str: ...

Scopes nest: an inner scope overrides the user and thread it names and merges its
properties over the outer ones. The state lives in :mod:`contextvars` (as OpenTelemetry's
own context does), so concurrent threads and asyncio tasks never see each other's users.
A new thread starts with no user context, as it starts with no current span; asyncio tasks
inherit the context they were created in.

A span keeps what it sets itself: the processor writes ``user.id`` only when the span has
neither ``user.id`` nor ``enduser.id``, ``gen_ai.conversation.id`` only when it has neither
that nor ``session.id``, and the context properties under ``trubrics.context.properties``,
which the encoder merges *under* the event's own properties.

The processor also passes a user and thread down the trace: a span whose parent (an SDK span
of this process) names them, under any key the encoder reads (``user.id``, ``session.id``,
``langfuse.user.id``, ``ai.telemetry.metadata.userId``, OpenInference's ``metadata``…), gets
them as ``trubrics.inherited.*`` when it names none itself. So an LLM span started inside the
web handler's request span is the request's user's, even when the two spans are exported in
different batches.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from trubrics_otel import semconv as sc
from trubrics_otel.translate.jsonable import dumps
from trubrics_otel.translate.traces import Identity, own_identity

F = TypeVar("F", bound=Callable[..., Any])
_logger = logging.getLogger("trubrics")


@dataclass(frozen=True)
class UserContext:
    user_id: str | None = None
    thread_id: str | None = None
    properties: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def inside(self, outer: UserContext | None) -> UserContext:
        """This scope nested in ``outer``: named values override, properties merge."""
        if outer is None:
            return self
        return UserContext(
            user_id=self.user_id if self.user_id is not None else outer.user_id,
            thread_id=self.thread_id if self.thread_id is not None else outer.thread_id,
            properties=MappingProxyType({**outer.properties, **self.properties}),
        )


_SCOPES: contextvars.ContextVar[tuple[UserContext, ...]] = contextvars.ContextVar(
    "trubrics_user_context", default=()
)
"""The open scopes, innermost last. One variable for all scopes: nothing accumulates in a
long-lived thread's context however many scopes it opens."""

open_user_contexts = _SCOPES.get
"""The open ``user_context`` scopes here (empty outside every one): ``track()``'s fast path
asks this, one C call, rather than :func:`current_user_context`."""


def current_user_context() -> UserContext | None:
    """The user context in force here, or ``None`` outside every ``user_context``."""
    scopes = _SCOPES.get()
    return scopes[-1] if scopes else None


def _enter(scope: UserContext) -> UserContext:
    scopes = _SCOPES.get()
    merged = scope.inside(scopes[-1] if scopes else None)
    _SCOPES.set((*scopes, merged))
    return merged


def _exit() -> None:
    _SCOPES.set(_SCOPES.get()[:-1])


class user_context:  # noqa: N801 - used like a function, as contextlib's helpers are
    """Scope work to a user, a conversation thread and extra properties.

    A context manager and a decorator (for plain and ``async`` functions). One instance
    may be shared: each thread, task or call of a decorated function enters its own scope.
    """

    def __init__(
        self,
        user_id: Any = None,
        thread_id: Any = None,
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        self._scope = UserContext(
            user_id=None if user_id is None else str(user_id),
            thread_id=None if thread_id is None else str(thread_id),
            properties=MappingProxyType(dict(properties or {})),
        )

    def __repr__(self) -> str:
        return f"user_context(user_id={self._scope.user_id!r}, thread_id={self._scope.thread_id!r})"

    def __enter__(self) -> UserContext:
        return _enter(self._scope)

    def __exit__(self, *exc_info: object) -> None:
        _exit()

    def __call__(self, func: F) -> F:
        scope = self._scope

        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                _enter(scope)
                try:
                    return await func(*args, **kwargs)
                finally:
                    _exit()

            return run_async  # type: ignore[return-value]

        @functools.wraps(func)
        def run(*args: Any, **kwargs: Any) -> Any:
            _enter(scope)
            try:
                return func(*args, **kwargs)
            finally:
                _exit()

        return run  # type: ignore[return-value]


def stamp(scope: UserContext, attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The attributes ``scope`` adds to a span that has ``attributes``: only what it lacks."""
    added: dict[str, Any] = {}
    if scope.user_id is not None and not (attributes.get(sc.USER_ID) or attributes.get(sc.ENDUSER_ID)):
        added[sc.USER_ID] = scope.user_id
    if scope.thread_id is not None and not (
        attributes.get(sc.GEN_AI_CONVERSATION_ID) or attributes.get(sc.SESSION_ID)
    ):
        added[sc.GEN_AI_CONVERSATION_ID] = scope.thread_id
    if scope.properties and sc.TRUBRICS_CONTEXT_PROPERTIES not in attributes:
        added[sc.TRUBRICS_CONTEXT_PROPERTIES] = dumps(scope.properties)
    return added


def inherited(parent: Identity, own: Identity, scope: UserContext | None) -> dict[str, Any]:
    """What a span whose own identity is ``own`` inherits: the current scope's thread over a
    weak one of its own (pydantic-ai's per-run id), then its ``parent``'s user and thread."""
    added: dict[str, Any] = {}
    if own.user_id is None and parent.user_id:
        added[sc.TRUBRICS_INHERITED_USER_ID] = parent.user_id
    thread = scope.thread_id if scope is not None and own.weak_thread_id else None
    if own.thread_id is None and (thread or parent.thread_id):
        added[sc.TRUBRICS_INHERITED_THREAD_ID] = thread or parent.thread_id
    if own.weak_thread_id is None and parent.weak_thread_id:
        added[sc.TRUBRICS_INHERITED_WEAK_THREAD_ID] = parent.weak_thread_id
    return added


def _identity(span: Any) -> Identity | None:
    """A live SDK span's identity as the encoder will read it, or None for any other span."""
    attributes = getattr(span, "attributes", None)
    if attributes is None:
        return None
    scope = getattr(span, "instrumentation_scope", None)
    return own_identity(attributes, getattr(scope, "name", None))


class UserContextSpanProcessor(SpanProcessor):
    """Stamps the current :func:`user_context`, and the parent span's user and thread, on
    every span at start; sends nothing."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        scope = current_user_context()
        try:
            if scope is not None:
                for key, value in stamp(scope, span.attributes or {}).items():
                    span.set_attribute(key, value)
            parent = _identity(trace.get_current_span(parent_context))
            if parent is None and scope is None:
                return
            own = _identity(span)
            if own is not None:
                for key, value in inherited(parent or Identity(), own, scope).items():
                    span.set_attribute(key, value)
        except Exception:  # never break the span's owner over analytics
            _logger.exception("Could not stamp the user context on span %r.", span.name)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
