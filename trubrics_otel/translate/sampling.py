"""Keep a share of traces, whole: the decision depends on the trace id alone.

::

    configure(tracer_provider=provider, sample_rate=0.25)   # instrumentation spans
    Trubrics(sample_rate=0.1)                               # very high-volume apps only

Every span of a trace carries the same trace id, so every span of a trace gets the same
answer, in every process: a trace is kept whole or not at all, and a trace that crosses
services (W3C ``traceparent``) is decided the same way on both sides. The bound is the
OpenTelemetry SDK's ``TraceIdRatioBased`` one, so a kept trace here is also a kept trace
for an app that samples with ``traceidratio`` at the same rate.

Without an explicit rate, the standard ``OTEL_TRACES_SAMPLER`` /
``OTEL_TRACES_SAMPLER_ARG`` are honoured (``traceidratio``, ``parentbased_traceidratio``,
``always_off``, ``parentbased_always_off``; anything else keeps everything).
"""

from __future__ import annotations

from opentelemetry.sdk.trace.sampling import TraceIdRatioBased


class TraceSampler:
    """``keep(trace_id)``: the same answer for every span of a trace."""

    __slots__ = ("rate", "_bound")

    def __init__(self, rate: float) -> None:
        self.rate = min(1.0, max(0.0, float(rate)))
        self._bound = TraceIdRatioBased.get_bound_for_rate(self.rate)

    def keep(self, trace_id: int) -> bool:
        return trace_id & TraceIdRatioBased.TRACE_ID_LIMIT < self._bound

    def __repr__(self) -> str:
        return f"TraceSampler(rate={self.rate})"


def sampler_for(rate: float | None) -> TraceSampler | None:
    """A sampler keeping ``rate`` of traces; None keeps all (``rate`` None or >= 1)."""
    if rate is None or rate >= 1.0:
        return None
    return TraceSampler(rate)
