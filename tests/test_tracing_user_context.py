from opentelemetry.sdk.trace import TracerProvider

from trubrics_otel import UserContextSpanProcessor, user_context


def test_user_context_and_trace_agree(make_client, endpoint):
    provider = TracerProvider()
    provider.add_span_processor(UserContextSpanProcessor())
    client = make_client(tracer_provider=provider)
    app = provider.get_tracer("app")
    with user_context(user_id="ctx-user", thread_id="ctx-thread"):
        with client.trace("no-user"):           # inherits the user context
            client.event("e1")
        with client.trace("own-user", user_id="trace-user", thread_id="tt"):
            with app.start_as_current_span("chat gpt", attributes={"gen_ai.operation.name": "chat"}):
                pass                              # the app's LLM span gets the trace's user
    client.flush(timeout=10)
    users = {e["event"]: e["user_id"] for e in endpoint.events()}
    assert users == {"no-user": "ctx-user", "e1": "ctx-user", "own-user": "trace-user"}
    [llm] = endpoint.events("publish_llm_events")
    assert (llm["user_id"], llm["thread_id"]) == ("trace-user", "tt")
