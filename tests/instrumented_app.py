"""An app using the official ``openai`` client under one instrumentation library.

Run as a subprocess, one library per process: instrumentors patch the ``openai`` module
globally, so a fresh interpreter per library is the honest way to compare them::

    python tests/instrumented_app.py --lib openai-v2 --openai-url URL --trubrics-host URL
    python tests/instrumented_app.py --lib openinference --openai-url URL --dump DIR
    python tests/instrumented_app.py --lib openllmetry --openai-url URL --otlp-endpoint URL

With ``--trubrics-host`` spans go through ``trubrics_otel.capture.configure`` to a Trubrics
endpoint; with ``--dump`` they are captured in memory and written as JSON fixtures
(``DIR/<case>.json``, log records included), which is how ``tests/fixtures/spans`` was made.
With ``--otlp-endpoint`` they leave as plain OTLP/HTTP, as to a Collector.

Every case runs inside ``user_context(user_id="u1", thread_id="t-42", properties={"plan":
"pro"})`` and inside a non-LLM ``handle request`` server span, as a web app's would.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

LIBRARIES = ("openai-v2", "openllmetry", "openinference")
CASES = ("chat", "stream", "error", "tool_call")
USER_ID, THREAD_ID, PROPERTIES = "u1", "t-42", {"plan": "pro"}
MODEL = "gpt-4o-mini"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def instrument(lib: str, provider: Any, logger_provider: Any) -> None:
    if lib == "openai-v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

        options = {"tracer_provider": provider, "logger_provider": logger_provider}
        try:  # releases <= 2.1b0 log content through the (since removed) Events API
            from opentelemetry.sdk._events import EventLoggerProvider

            options["event_logger_provider"] = EventLoggerProvider(logger_provider)
        except ImportError:
            pass
        OpenAIInstrumentor().instrument(**options)
    elif lib == "openllmetry":
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    elif lib == "openinference":
        from openinference.instrumentation.openai import OpenAIInstrumentor

        OpenAIInstrumentor().instrument(tracer_provider=provider)
    else:
        raise SystemExit(f"unknown library {lib!r}")


def run_case(case: str, client: Any, tracer: Any) -> None:
    import openai

    from trubrics_otel import user_context

    system = {"role": "system", "content": "You are terse."}
    with tracer.start_as_current_span("handle request", kind=_server_kind()):
        with user_context(user_id=USER_ID, thread_id=THREAD_ID, properties=PROPERTIES):
            if case == "chat":
                client.chat.completions.create(
                    model=MODEL,
                    messages=[system, {"role": "user", "content": "Say hello"}],
                    temperature=0.2,
                    max_tokens=50,
                )
            elif case == "stream":
                stream = client.chat.completions.create(
                    model=MODEL,
                    messages=[system, {"role": "user", "content": "Count to three"}],
                    stream=True,
                    stream_options={"include_usage": True},
                )
                for _ in stream:
                    pass
            elif case == "error":
                try:
                    client.chat.completions.create(
                        model="fail-500", messages=[{"role": "user", "content": "Break"}]
                    )
                except openai.InternalServerError:
                    pass
            elif case == "tool_call":
                client.chat.completions.create(
                    model=MODEL,
                    messages=[{"role": "user", "content": "Weather in Paris?"}],
                    tools=[WEATHER_TOOL],
                )
                # What an agent framework records when it runs the tool.
                with tracer.start_as_current_span(
                    "execute_tool get_weather",
                    attributes={
                        "gen_ai.operation.name": "execute_tool",
                        "gen_ai.tool.name": "get_weather",
                        "gen_ai.tool.call.id": "call_fake_0001",
                    },
                ):
                    pass


def _server_kind() -> Any:
    from opentelemetry.trace import SpanKind

    return SpanKind.SERVER


def span_json(span: Any) -> dict[str, Any]:
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent_span_id": None if parent is None else f"{parent.span_id:016x}",
        "start_time": span.start_time,
        "end_time": span.end_time,
        "status": {"code": span.status.status_code.name, "description": span.status.description},
        "attributes": _plain(dict(span.attributes or {})),
        "events": [
            {
                "name": e.name,
                "timestamp": e.timestamp,
                "attributes": _plain(dict(e.attributes or {})),
            }
            for e in span.events
        ],
        "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
    }


def log_json(data: Any) -> dict[str, Any]:
    record = data.log_record
    attributes = dict(record.attributes or {})
    return {
        "event_name": getattr(record, "event_name", None) or attributes.get("event.name"),
        "timestamp": record.timestamp,
        "trace_id": f"{record.trace_id:032x}" if record.trace_id else None,
        "span_id": f"{record.span_id:016x}" if record.span_id else None,
        "attributes": _plain(dict(record.attributes or {})),
        "body": _plain(record.body),
    }


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lib", choices=LIBRARIES, required=True)
    parser.add_argument("--openai-url", required=True)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--dump", type=Path, help="write span fixtures here instead of exporting")
    parser.add_argument("--trubrics-host")
    parser.add_argument("--otlp-endpoint", help="export plain OTLP/HTTP here (a collector) instead")
    parser.add_argument("--all-spans", action="store_true", help="send non-LLM spans too")
    args = parser.parse_args(argv)

    import openai
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        InMemorySpanExporter,
    )

    provider = TracerProvider()
    memory = InMemorySpanExporter()
    logs_memory = logger_provider = exporter = None
    if args.dump:
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs import export as log_export
        from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor

        # renamed in SDK 1.39; the older name serves the fixtures of older releases
        InMemoryLogRecordExporter = (
            getattr(  # noqa: N806
                log_export, "InMemoryLogRecordExporter", None
            )
            or log_export.InMemoryLogExporter
        )

        from trubrics_otel.capture.context import UserContextSpanProcessor

        logs_memory = InMemoryLogRecordExporter()
        logger_provider = LoggerProvider()
        logger_provider.add_log_record_processor(SimpleLogRecordProcessor(logs_memory))
        provider.add_span_processor(UserContextSpanProcessor())
        provider.add_span_processor(SimpleSpanProcessor(memory))
    elif args.otlp_endpoint:  # an app that only speaks OTLP to its collector
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from trubrics_otel.capture.context import UserContextSpanProcessor

        exporter = None
        provider.add_span_processor(UserContextSpanProcessor())
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=args.otlp_endpoint), schedule_delay_millis=50)
        )
    else:
        from opentelemetry.sdk._logs import LoggerProvider

        from trubrics_otel import configure

        logger_provider = LoggerProvider()
        exporter = configure(
            provider,
            api_key="sk-test",
            host=args.trubrics_host,
            logger_provider=logger_provider,
            schedule_delay_millis=50,
            all_spans=args.all_spans,
        )
    instrument(args.lib, provider, logger_provider)
    client = openai.OpenAI(base_url=args.openai_url, api_key="sk-fake", max_retries=0)
    tracer = provider.get_tracer("instrumented_app")
    for case in args.cases.split(","):
        if args.dump:
            memory.clear()
            logs_memory.clear()
        run_case(case, client, tracer)
        if args.dump:
            args.dump.mkdir(parents=True, exist_ok=True)
            dump = {
                "spans": [span_json(s) for s in memory.get_finished_spans()],
                "logs": [log_json(r) for r in logs_memory.get_finished_logs()],
            }
            path = args.dump / f"{case}.json"
            path.write_text(json.dumps(dump, indent=2, sort_keys=True) + "\n")
    provider.shutdown()
    if exporter is not None:
        print(json.dumps(exporter.stats()))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
