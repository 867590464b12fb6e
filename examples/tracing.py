"""Trace one chat request end to end: nested spans, an LLM generation, an event, a score.

Runs with no account: by default it starts a tiny Trubrics-compatible endpoint on
127.0.0.1, sends everything there and prints the tree the events describe (rebuilt from
``$trace_id`` / ``$span_id`` / ``$parent_span_id``, as a backend would)::

    python3 -m venv .venv && .venv/bin/pip install -q -e .   # from the repo's root, once
    .venv/bin/python examples/tracing.py             # local capturing endpoint
    .venv/bin/python examples/tracing.py --host http://127.0.0.1:8787 --api-key local-dev-key   # a running serve

The "LLM" and the "retriever" are stand-ins, so nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from trubrics_otel import Trubrics, current_observation


class CapturingEndpoint:
    """Accepts ``POST /publish_events`` and ``/publish_llm_events`` and keeps the events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                kind = self.path.rstrip("/").rsplit("/", 1)[-1]
                endpoint.events.extend((kind, event) for event in body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def run(trubrics: Trubrics, question: str) -> None:
    @trubrics.observe()
    def retrieve(query: str) -> list[str]:
        return [f"doc about {word}" for word in query.split()[:3]]

    @trubrics.observe(as_type="generation")
    def call_llm(messages: list[dict[str, str]]) -> str:
        current_observation().update(model="stub-llm-1", model_parameters={"temperature": 0.2},
                                     usage={"prompt_tokens": 42, "completion_tokens": 7})
        return "Trubrics is product analytics for AI apps."

    async def rerank(docs: list[str]) -> list[str]:
        async def score_doc(doc: str) -> tuple[int, str]:
            with trubrics.span("score-doc", input=doc) as span:  # asyncio tasks inherit the trace
                await asyncio.sleep(0.01)
                span.update(output=len(doc))
                return len(doc), doc

        scored = await asyncio.gather(*(score_doc(d) for d in docs))
        return [doc for _, doc in sorted(scored)]

    def audit(note: str) -> None:  # runs in another thread
        trubrics.event("audit", metadata={"note": note})

    with trubrics.trace("chat-completion", user_id="user-1", thread_id="thread-42",
                        input=question, metadata={"env": "example"}) as trace:
        docs = retrieve(question)
        docs = asyncio.run(rerank(docs))
        answer = call_llm([{"role": "system", "content": f"Context: {docs}"},
                           {"role": "user", "content": question}])
        trubrics.event("cache-miss", metadata={"key": question.lower()})
        # a new thread starts with an empty context: run it in a copy of ours
        worker = threading.Thread(target=contextvars.copy_context().run, args=(audit, "answered"))
        worker.start()
        worker.join()
        trace.update(output=answer)

    # later, e.g. when the user clicks thumbs-up in the UI
    trubrics.score(trace_id=trace.id, name="user-explicit-feedback", value=1, comment="helpful")


def print_tree(events: list[tuple[str, dict[str, Any]]]) -> None:
    children: dict[str | None, list[tuple[str, dict[str, Any]]]] = {}
    ids = {e["properties"]["$span_id"] for _, e in events}
    for kind, event in events:
        parent = event["properties"].get("$parent_span_id")
        children.setdefault(parent if parent in ids else None, []).append((kind, event))

    def show(parent: str | None, depth: int) -> None:
        for kind, event in sorted(children.get(parent, []), key=lambda ke: ke[1]["timestamp"]):
            props = {k: v for k, v in event["properties"].items() if not k.startswith("$")}
            if kind == "publish_llm_events":
                line = (f"LLM {event['assistant_id']}: {event['prompt']!r} -> {event['generation']!r}"
                        f" ({event['latency']:.3f} s) {props}")
            else:
                line = f"{event['event']} {props}"
            print(f"{'  ' * depth}- [{event['user_id']}] {line}")
            show(event["properties"]["$span_id"], depth + 1)

    show(None, 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", help="a Trubrics ingestion URL (default: a local capturing endpoint)")
    parser.add_argument("--api-key", default="example-key")
    args = parser.parse_args()
    endpoint = None if args.host else CapturingEndpoint()
    trubrics = Trubrics(api_key=args.api_key, host=args.host or endpoint.url, flush_interval=0.2)
    try:
        run(trubrics, "What is Trubrics?")
        undelivered = trubrics.flush(timeout=10)
    finally:
        trubrics.close(timeout=10)
    if endpoint is not None:
        endpoint.stop()
        print(f"{len(endpoint.events)} events received:")
        print_tree(endpoint.events)
    else:
        print(f"sent to {args.host}; {undelivered} undelivered")
    return 1 if undelivered else 0


if __name__ == "__main__":
    raise SystemExit(main())
