"""``observe`` and ``get_client``: Langfuse v3's module-level form, on one client per process.

::

    from trubrics_otel import get_client, observe

    @observe                                  # or @observe(name="plan")
    def plan(task): ...

    @observe(as_type="generation")            # async functions and generators too
    async def ask(messages): ...

    plan("compare plans")                     # the first call makes the client, from TRUBRICS_API_KEY…
    get_client().track(user_id="u1", event="Sign up")
    get_client().flush()

The process's client is the first ``Trubrics`` constructed: the app's own if it made one,
else one made from the environment (``TRUBRICS_API_KEY``, ``TRUBRICS_HOST`` and the rest of
:mod:`~trubrics_otel.settings`, read where ``Trubrics()`` reads them) by the first call of
``get_client()`` or of a decorated function. Nothing is made at import or decoration: no
client, thread or file. Without an API key, decorated functions run untraced and one error
on the ``trubrics`` logger says so (Langfuse warns and runs them too); nothing raises into
the app. The client closes itself at exit, flushing what is left, as any ``Trubrics`` does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from trubrics_otel import settings
from trubrics_otel.capture.client import Trubrics
from trubrics_otel.capture.observation import SPAN
from trubrics_otel.capture.observe import observe as observe_with
from trubrics_otel.capture.tracing import Tracing

_lock = threading.RLock()
_tracing: Tracing | None = None
_decided = False
"""Whether the first decorated call chose ``_tracing`` (None: untraced, said once)."""


def get_client() -> Trubrics:
    """The process's client: the first ``Trubrics`` constructed, made from the environment
    when there is none yet (two threads' first calls make one)."""
    first = Trubrics._first
    if first is None:
        with _lock:
            if Trubrics._first is None:
                Trubrics()  # registers itself as the first
            first = Trubrics._first
    return first  # type: ignore[return-value]


def observe(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    as_type: str = SPAN,
    capture_input: bool = True,
    capture_output: bool = True,
) -> Any:
    """``Trubrics.observe`` on the process's client, which the first call chooses, not this."""
    return observe_with(
        _default_tracing, func, name=name, as_type=as_type, capture_input=capture_input,
        capture_output=capture_output,
    )


def _default_tracing() -> Tracing | None:
    """The process's client's tracing; None without an API key (logged once) or on our failure."""
    global _tracing, _decided
    if _decided:
        return _tracing
    try:
        with _lock:
            if not _decided:
                client = get_client()
                if client._api_key is not None or settings.read(settings.API_KEY):
                    _tracing = client._tracing
                else:
                    client.logger.error(
                        "observe(): no Trubrics API key (set TRUBRICS_API_KEY, or construct "
                        "Trubrics(api_key=...) first); decorated functions run untraced.")
                _decided = True
    except Exception:  # never into the app: its function runs, untraced
        _decided = True
        logging.getLogger("trubrics").exception("observe(): no Trubrics client; decorated functions run untraced")
    return _tracing
