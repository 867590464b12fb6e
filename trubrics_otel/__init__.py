"""Trubrics-style product analytics for AI apps, built on OpenTelemetry.

::

    from trubrics_otel import Trubrics

    trubrics = Trubrics(api_key="...")
    trubrics.track(user_id="u1", event="Sign up", properties={"plan": "pro"})
    trubrics.close()
"""

import logging as _logging

from trubrics_otel.client import Trubrics
from trubrics_otel.configure import configure
from trubrics_otel.context import UserContextSpanProcessor, user_context
from trubrics_otel.exporter import TrubricsSpanExporter
from trubrics_otel.tracing import Observation, current_observation

__all__ = [
    "Observation",
    "Trubrics",
    "TrubricsSpanExporter",
    "UserContextSpanProcessor",
    "configure",
    "current_observation",
    "user_context",
]

# ERROR by default, as the official SDK documents; an app that set a level keeps it.
if _logging.getLogger("trubrics").level == _logging.NOTSET:
    _logging.getLogger("trubrics").setLevel(_logging.ERROR)
