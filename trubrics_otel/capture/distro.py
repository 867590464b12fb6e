"""The zero-code path: ``opentelemetry-instrument`` with Trubrics as the only destination.

::

    # from a clone (trubrics-otel is on no package index yet)
    pip install -e '.[zero-code]' opentelemetry-instrumentation-openai-v2==2.4b0 \
        opentelemetry-util-genai==1.0b0
    OTEL_TRACES_EXPORTER=trubrics TRUBRICS_API_KEY=... opentelemetry-instrument python app.py

``opentelemetry-instrument`` needs a *distro* (defaults) and a *configurator* (the SDK set-up);
both are registered here under the name ``trubrics`` (entry-point groups
``opentelemetry_distro`` and ``opentelemetry_configurator``). The configurator is the SDK's
own. The distro's defaults, each only where the user set nothing (what they set always wins):

* traces, metrics and logs go over OTLP as with ``opentelemetry-distro`` (a Collector or
  ``trubrics-otel serve`` on the default ports) when the OTLP exporter for the configured protocol
  is installed; with only the other one installed, that one; with none, traces go to
  ``trubrics`` and metrics and logs nowhere, instead of failing with "Requested component
  'otlp_proto_grpc' not found";
* with ``OTEL_TRACES_EXPORTER=trubrics``, metrics and logs default to ``none``;
* when traces go to Trubrics, the GenAI instrumentations capture message content on spans
  (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=span_only``): prompts and generations are
  what Trubrics analyses, and without it the official instrumentation records none. The
  redaction policy still applies, and the variable set to ``false`` turns capture off.

With ``opentelemetry-distro`` installed as well, the launcher takes whichever distro it finds
first; ``OTEL_PYTHON_DISTRO=trubrics`` picks this one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, MutableMapping
from importlib.metadata import entry_points
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

from trubrics_otel import settings

CAPTURE_CONTENT = settings.CAPTURE_CONTENT.name
SIGNALS = {  # exporter variable -> (entry-point group, per-signal protocol variable, without OTLP)
    OTEL_TRACES_EXPORTER: ("opentelemetry_traces_exporter", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "trubrics"),
    OTEL_METRICS_EXPORTER: ("opentelemetry_metrics_exporter", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "none"),
    OTEL_LOGS_EXPORTER: ("opentelemetry_logs_exporter", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL", "none"),
}
OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def defaults(environ: Mapping[str, str], installed: Callable[[str, str], bool]) -> dict[str, str]:
    """The variables the distro sets, given the environment and ``installed(group, name)``
    (whether an exporter entry point exists)."""
    chosen: dict[str, str] = {}
    to_trubrics = _to_trubrics(environ.get(OTEL_TRACES_EXPORTER, ""))
    for variable, (group, protocol_variable, fallback) in SIGNALS.items():
        if environ.get(variable, "").strip():
            continue
        if to_trubrics:  # spans to Trubrics do not drag metrics and logs to OTLP
            chosen[variable] = "none"
            continue
        protocol = (environ.get(protocol_variable) or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
        wanted = OTLP_BY_PROTOCOL.get(protocol or "grpc")
        others = [] if protocol else [c for c in OTLP_BY_PROTOCOL.values() if c != wanted]
        if wanted is None or installed(group, wanted):
            chosen[variable] = "otlp"  # as opentelemetry-distro (an unknown protocol: the SDK says so)
        else:
            chosen[variable] = next((c for c in others if installed(group, c)), fallback)
    traces = environ.get(OTEL_TRACES_EXPORTER, "").strip() or chosen.get(OTEL_TRACES_EXPORTER, "")
    if _to_trubrics(traces) and not environ.get(CAPTURE_CONTENT, "").strip():
        chosen[CAPTURE_CONTENT] = "span_only"
    return chosen


def _to_trubrics(exporters: str) -> bool:
    return "trubrics" in {name.strip() for name in exporters.split(",")}


def _installed(group: str, name: str) -> bool:
    return any(point.name == name for point in entry_points(group=group))


class TrubricsDistro(BaseDistro):
    """Defaults for ``opentelemetry-instrument`` (see the module): OTLP when it is installed,
    else Trubrics; message content captured when spans go to Trubrics."""

    def _configure(self, **kwargs: Any) -> None:
        environ: MutableMapping[str, str] = os.environ
        for name, value in defaults(environ, _installed).items():
            environ.setdefault(name, value)


class TrubricsConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator, under our name (``opentelemetry-instrument`` needs one)."""
