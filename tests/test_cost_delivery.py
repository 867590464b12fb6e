"""Cost on the wire: what each LLM event cost reaches Trubrics, from every path that makes one.

``tests/test_cost.py`` checks the arithmetic per provider; here real clients deliver to the
local endpoint, and the properties Trubrics receives are checked: ``track_llm`` with token
counts, an instrumentation span under ``configure()``, custom prices, an unknown model, a
price file that does not parse.
"""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.trace import TracerProvider

from trubrics_otel import configure

GPT_4O_MINI = {"input": 0.15, "output": 0.60}  # USD per million tokens (genai-prices, OpenAI's list)


def _llm_events(endpoint, client, n=1):
    client.flush(timeout=10)
    endpoint.wait_for_events(n)
    return endpoint.events("publish_llm_events")


def test_track_llm_with_tokens_is_priced_from_the_maintained_table(make_client, endpoint):
    client = make_client()
    client.track_llm(user_id="u1", prompt="Hi", generation="Hello", assistant_id="gpt-4o-mini",
                     properties={"input_tokens": 1000, "output_tokens": 500})
    [event] = _llm_events(endpoint, client)
    properties = event["properties"]
    # 1000 x 0.15 / 1e6 = 0.00015 input; 500 x 0.60 / 1e6 = 0.0003 output
    assert properties["input_cost_usd"] == 0.00015
    assert properties["output_cost_usd"] == 0.0003
    assert properties["cost_usd"] == 0.00045
    assert properties["cost_source"].startswith("genai-prices ")


def test_no_cost_without_tokens_or_for_an_unknown_model(make_client, endpoint):
    client = make_client()
    client.track_llm(user_id="u1", prompt="a", generation="b", assistant_id="gpt-4o-mini")
    client.track_llm(user_id="u1", prompt="a", generation="b", assistant_id="acme-private-7b",
                     properties={"input_tokens": 10, "output_tokens": 5})
    events = _llm_events(endpoint, client, 2)
    assert len(events) == 2
    for event in events:  # nothing, not 0: "free" would be a wrong answer
        assert not {"cost_usd", "input_cost_usd", "output_cost_usd"} & set(event["properties"])


def test_custom_prices_price_a_private_model_and_win_over_the_table(make_client, endpoint):
    client = make_client(prices={"models": {
        "acme-ft-1": {"input_per_mtok": 2.0, "output_per_mtok": 8.0},
        "gpt-4o-mini": {"input_per_mtok": 0.1, "output_per_mtok": 0.4},  # a negotiated rate
    }})
    client.track_llm(user_id="u1", prompt="a", generation="b", assistant_id="acme-ft-1",
                     properties={"input_tokens": 500_000, "output_tokens": 250_000})
    client.track_llm(user_id="u1", prompt="a", generation="b", assistant_id="gpt-4o-mini",
                     properties={"input_tokens": 1_000_000, "output_tokens": 1_000_000})
    events = {e["assistant_id"]: e["properties"] for e in _llm_events(endpoint, client, 2)}
    assert events["acme-ft-1"]["cost_usd"] == 3.0  # 0.5 x 2.0 + 0.25 x 8.0
    assert events["gpt-4o-mini"]["cost_usd"] == 0.5  # 1 x 0.1 + 1 x 0.4, not the list price
    assert {p["cost_source"] for p in events.values()} == {"custom"}


def test_a_broken_price_file_is_one_error_and_events_still_go(make_client, endpoint, tmp_path,
                                                               monkeypatch, caplog):
    broken = tmp_path / "prices.json"
    broken.write_text("{not json")
    monkeypatch.setenv("TRUBRICS_PRICES_FILE", str(broken))
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        client = make_client()
        for _ in range(3):
            client.track_llm(user_id="u1", prompt="a", generation="b", assistant_id="gpt-4o-mini",
                             properties={"input_tokens": 1000, "output_tokens": 500})
        events = _llm_events(endpoint, client, 3)
    assert len(events) == 3
    assert all(e["properties"]["cost_usd"] == 0.00045 for e in events)  # the table still prices
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(broken) in errors[0]


def test_an_instrumentation_span_is_priced_and_a_span_cost_wins(endpoint, tmp_path):
    provider = TracerProvider()
    exporter = configure(provider, api_key="sk-test", host=endpoint.url, schedule_delay_millis=50)
    tracer = provider.get_tracer("some.instrumentation")
    common = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 2000, "gen_ai.usage.output_tokens": 1000,
        "gen_ai.input.messages": json.dumps([{"role": "user", "parts": [{"type": "text", "content": "Hi"}]}]),
    }
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes=common):
        pass
    with tracer.start_as_current_span("chat gpt-4o-mini", attributes={**common, "gen_ai.usage.cost": 0.5}):
        pass
    provider.force_flush()
    endpoint.wait_for_events(2)
    provider.shutdown()
    priced, carried = sorted(endpoint.events("publish_llm_events"), key=lambda e: e["properties"]["cost_usd"])
    assert priced["properties"]["cost_usd"] == 0.0009  # 2000 x 0.15 / 1e6 + 1000 x 0.60 / 1e6
    assert carried["properties"]["cost_usd"] == 0.5
    assert carried["properties"]["cost_source"] == "span"
    assert exporter.stats()["sent"] == 2


def test_the_local_server_shows_cost_per_thread_per_user_and_in_total(tmp_path, capsys, monkeypatch):
    """Priced events stored by ``serve``: the CLI's users / threads / stats add them up."""
    from trubrics_otel import Trubrics
    from trubrics_otel.cli import main
    from trubrics_otel.server import LocalServer

    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "events.sqlite3"
    with LocalServer(db) as server:
        client = Trubrics(api_key="local-dev-key", host=server.url, flush_interval=0.05)
        calls = [("ann", "t-1", 1000, 500), ("ann", "t-1", 2000, 1000), ("bob", "t-2", 4000, 0)]
        for user, thread, tokens_in, tokens_out in calls:
            client.track_llm(user_id=user, prompt="q", generation="a", assistant_id="gpt-4o-mini",
                             thread_id=thread, properties={"input_tokens": tokens_in, "output_tokens": tokens_out})
        client.track_llm(user_id="bob", prompt="q", generation="a", assistant_id="acme-private",
                         thread_id="t-2", properties={"input_tokens": 5, "output_tokens": 5})  # unpriced
        client.close(timeout=10)
        for source in (["--db", str(db)], ["--url", server.url]):
            assert main(["users", *source, "--json"]) == 0
            users = {u["user_id"]: u["cost_usd"] for u in json.loads(capsys.readouterr().out)}
            # ann: 3000 x 0.15 + 1500 x 0.60 = 1350 per million; bob: 4000 x 0.15 = 600 per million
            assert users == {"ann": pytest.approx(0.00135), "bob": pytest.approx(0.0006)}
            assert main(["threads", *source, "--json"]) == 0
            threads = {t["thread_id"]: t["cost_usd"] for t in json.loads(capsys.readouterr().out)}
            assert threads == {"t-1": pytest.approx(0.00135), "t-2": pytest.approx(0.0006)}
        assert main(["stats", "--db", str(db), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["totals"]["cost_usd"] == pytest.approx(0.00195)
        assert main(["users", "--db", str(db)]) == 0
        table = capsys.readouterr().out
        assert "COST $" in table and "0.0014" in table and "0.0006" in table
