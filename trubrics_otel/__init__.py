"""Trubrics-style product analytics for AI apps, built on OpenTelemetry.

::

    from trubrics_otel import Trubrics

    trubrics = Trubrics(api_key="...")
    trubrics.track(user_id="u1", event="Sign up", properties={"plan": "pro"})
    trubrics.close()

Or Langfuse v3's form, on one client per process made from the environment at first use::

    from trubrics_otel import get_client, observe

    @observe(as_type="generation")
    def ask(messages): ...
"""

import logging as _logging

from trubrics_otel.capture.client import SyncResult, Trubrics
from trubrics_otel.capture.configure import configure
from trubrics_otel.capture.context import UserContextSpanProcessor, user_context
from trubrics_otel.capture.default import get_client, observe
from trubrics_otel.capture.observation import Observation, current_observation
from trubrics_otel.deliver.exporter import TrubricsSpanExporter
from trubrics_otel.deliver.processor import SpoolingSpanProcessor

__all__ = [
    "Observation",
    "SpoolingSpanProcessor",
    "SyncResult",
    "Trubrics",
    "TrubricsSpanExporter",
    "UserContextSpanProcessor",
    "configure",
    "current_observation",
    "doctor",
    "get_client",
    "observe",
    "user_context",
]


def __getattr__(name: str) -> object:
    """``doctor`` on first use: the checks import nothing an app needs otherwise."""
    if name == "doctor":
        from trubrics_otel.diagnose import doctor

        return doctor
    raise AttributeError(f"module 'trubrics_otel' has no attribute {name!r}")

# ERROR by default, as the official SDK documents; an app that set a level keeps it.
if _logging.getLogger("trubrics").level == _logging.NOTSET:
    _logging.getLogger("trubrics").setLevel(_logging.ERROR)
