"""The write path shared by the Trubrics ingestion API and OTLP intake: validate, then store.

::

    intake = Intake(store)                                   # policy and prices from settings
    intake.publish("publish_llm_events", body)               # Answer(200, {"stored": 2, ...})
    intake.traces(body, "application/x-protobuf")            # Answer(200, b"<OTLP response>", ...)

Both answer with an :class:`Answer` (status, a JSON-able body or bytes, content type) that
:mod:`.app` puts on the wire, over HTTP or gRPC. Neither raises for a bad request; a database
that is down raises :class:`~.store.StoreUnavailable` before anything of the request is
committed, so the client retries it whole.

The ingestion API's events are checked as the Trubrics API checks them (:mod:`.validation`):
valid ones are stored even when others of the batch are not. OTLP spans go through the same
encoder and redaction :class:`~trubrics_otel.translate.redaction.Policy` as the in-process
exporter's, then the same validation, leniently: a field out of range (a span ending before it
starts, a NaN) is stored as null, and what cannot be stored is counted in ``partial_success``.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, NamedTuple

from trubrics_otel import settings
from trubrics_otel.deliver.exporter import policy_from_settings, price_and_redact
from trubrics_otel.deliver.prices import load_price_table
from trubrics_otel.receive import otlp
from trubrics_otel.server.store import Store
from trubrics_otel.server.validation import (
    EVENT,
    LLM_EVENT,
    read_batch,
    validate_encoded,
)
from trubrics_otel.translate.encoder import encode_spans
from trubrics_otel.translate.redaction import Policy
from trubrics_otel.translate.traces import TraceMemory

ROUTES = {"publish_events": EVENT, "publish_llm_events": LLM_EVENT}
"""The ingestion API's routes (the last part of the path) and the fields of their events."""


class Answer(NamedTuple):
    status: int
    body: Any
    """A JSON-able value, or bytes sent as they are."""
    content_type: str = "application/json"


class Intake:
    """One per server: holds the OTLP trace memory (users inherited from ancestors, calls
    already stored) across requests; safe to call from several threads."""

    def __init__(self, store: Store, *, policy: Policy | None = None,
                 logger: logging.Logger | None = None) -> None:
        self.store = store
        self.logger = logger or logging.getLogger("trubrics.server")
        self.policy = policy or policy_from_settings(logger=self.logger)
        self._prices = load_price_table()  # OTLP spans are priced as the exporter prices them
        self._attribute_limit = settings.received_attribute_limit()  # bounds one OTLP request's work
        self._traces = TraceMemory()  # ancestors' users and sent calls, across OTLP requests
        self._encode_lock = threading.Lock()

    def publish(self, route: str, body: bytes) -> Answer:
        """``POST /publish_events`` or ``/publish_llm_events`` (``route``, a key of :data:`ROUTES`)."""
        try:
            good, errors, measured = read_batch(body, ROUTES[route])
        except (ValueError, UnicodeDecodeError) as exc:
            return Answer(422, {"detail": [{"index": None, "loc": ["body"], "msg": f"invalid JSON: {exc}"}]})
        if route == "publish_events":
            stored, duplicates = self.store.insert(good, (), measured)
        else:
            stored, duplicates = self.store.insert((), good, measured)
        if errors:
            self.logger.warning(
                "/%s: %d invalid events rejected (first: %s), %d stored",
                route, len({e["index"] for e in errors}), errors[0]["msg"], stored,
            )
            return Answer(422, {"detail": errors, "stored": stored, "duplicates": duplicates})
        self.logger.info("/%s: %d events stored, %d duplicates dropped", route, stored, duplicates)
        return Answer(200, {"stored": stored, "duplicates": duplicates})

    def traces(self, body: bytes, content_type: str | None) -> Answer:
        """An OTLP ``ExportTraceServiceRequest`` (protobuf or JSON, decompressed already)."""
        try:
            decoded = otlp.decode(body, content_type, self._attribute_limit)
        except otlp.UnsupportedMediaType as exc:
            return Answer(415, {"detail": str(exc)})
        except Exception as exc:  # a malformed request, whatever the decoder raises
            return Answer(400, {"detail": f"invalid OTLP request: {exc}"})
        with self._encode_lock:
            encoded = encode_spans(decoded.spans, memory=self._traces)
        problems = decoded.rejected + encoded.errors
        rejected = len(problems)
        kept: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        measured: dict[int, bytes] = {}  # properties the policy encoded: validation reads them
        leaving = price_and_redact(encoded, self._prices, self.policy, measured)
        for fields, found, into in zip((EVENT, LLM_EVENT), leaving, kept):
            for raw in found:
                event, errors = validate_encoded(raw, fields, measured.get(id(raw)))
                if not errors:
                    into.append(event)
                    continue
                fatal = [e["msg"] for e in errors if not e.get("repaired")]
                problems += [f"{e['msg']}: stored as null" for e in errors if e.get("repaired")]
                if fatal:
                    rejected += 1
                    problems.append(f"an event not stored: {fatal[0]}")
                else:
                    into.append(event)
        for message in problems[:5]:
            self.logger.warning("/v1/traces: %s", message)
        stored, duplicates = self.store.insert(*kept, measured)
        self.logger.info("/v1/traces: %d spans, %d events stored, %d duplicates dropped, %d rejected",
                         len(decoded.spans), stored, duplicates, rejected)
        as_json = decoded.json
        return Answer(200, otlp.response_body(rejected, "; ".join(problems[:5]), as_json=as_json),
                      otlp.JSON if as_json else otlp.PROTOBUF)
