"""The zero-code path: ``opentelemetry-instrument`` with Trubrics as the only destination.

::

    pip install 'trubrics-otel[zero-code]' opentelemetry-instrumentation-openai-v2
    OTEL_TRACES_EXPORTER=trubrics TRUBRICS_API_KEY=... opentelemetry-instrument python app.py

``opentelemetry-instrument`` needs a *distro* (defaults) and a *configurator* (the SDK set-up);
both are registered here under the name ``trubrics`` (entry-point groups
``opentelemetry_distro`` and ``opentelemetry_configurator``). The configurator is the SDK's
own. The distro behaves as ``opentelemetry-distro``'s (OTLP for traces, metrics and logs, so
``opentelemetry-instrument python app.py`` with default settings still reaches a Collector or
``trubrics-otel serve``) with one difference: when ``OTEL_TRACES_EXPORTER`` names
``trubrics``, metrics and logs default to ``none`` instead of OTLP over gRPC. With those defaults, the command above
failed with "Requested component 'otlp_proto_grpc' not found" and sent nothing unless
``OTEL_METRICS_EXPORTER=none OTEL_LOGS_EXPORTER=none`` were added; an app that wants OTLP
for them still sets those variables, which win as always.

With ``opentelemetry-distro`` installed as well, the launcher takes whichever distro it finds
first; ``OTEL_PYTHON_DISTRO=trubrics`` picks this one.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry.environment_variables import (
    OTEL_LOGS_EXPORTER,
    OTEL_METRICS_EXPORTER,
    OTEL_TRACES_EXPORTER,
)
from opentelemetry.instrumentation.distro import BaseDistro
from opentelemetry.sdk._configuration import _OTelSDKConfigurator

OTLP_DEFAULTS = {OTEL_TRACES_EXPORTER: "otlp", OTEL_METRICS_EXPORTER: "otlp", OTEL_LOGS_EXPORTER: "otlp"}
"""What ``opentelemetry-distro`` defaults to: an app that names no exporter keeps OTLP."""
TRUBRICS_DEFAULTS = {OTEL_METRICS_EXPORTER: "none", OTEL_LOGS_EXPORTER: "none"}
"""With ``OTEL_TRACES_EXPORTER=trubrics``: nothing else is exported unless asked for."""


class TrubricsDistro(BaseDistro):
    """Defaults for ``opentelemetry-instrument``: ``opentelemetry-distro``'s (OTLP for all three
    signals), except that spans sent to Trubrics do not drag metrics and logs to OTLP."""

    def _configure(self, **kwargs: Any) -> None:
        traces = os.environ.get(OTEL_TRACES_EXPORTER, "")
        names = {name.strip() for name in traces.split(",")}
        defaults = TRUBRICS_DEFAULTS if "trubrics" in names else OTLP_DEFAULTS
        for name, value in defaults.items():
            os.environ.setdefault(name, value)


class TrubricsConfigurator(_OTelSDKConfigurator):
    """The SDK's configurator, under our name (``opentelemetry-instrument`` needs one)."""
