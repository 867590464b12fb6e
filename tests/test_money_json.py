"""Costs in USD in every JSON answer (read API and ``--json``) are money, not float noise:
``0.1 + 0.2`` is ``0.3``, never ``0.30000000000000004``."""

from __future__ import annotations

import json

import requests

from trubrics_otel.cli import main
from trubrics_otel.server import LocalServer
from trubrics_otel.server.read_api import strict_json

KEY = {"x-api-key": "local-dev-key"}
NOISE = "0.30000000000000004"  # 0.1 + 0.2


def _turn(i: int, cost: float) -> dict:
    return {"user_id": "alice", "prompt": f"p{i}", "generation": f"g{i}", "timestamp": f"2026-03-02T10:0{i}:00+00:00",
            "properties": {"$thread_id": "t1", "model": "gpt-4o", "cost_usd": cost,
                           "$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}}


def test_cost_sums_are_rounded_in_the_read_api_and_the_cli(tmp_path, capsys):
    db = tmp_path / "money.sqlite3"
    with LocalServer(db) as server:
        sent = requests.post(f"{server.url}/publish_llm_events", json=[_turn(1, 0.1), _turn(2, 0.2)],
                             headers=KEY, timeout=10)
        assert sent.status_code == 200
        for path in ("analytics", "conversations", "threads", "users/alice"):
            text = requests.get(f"{server.url}/api/{path}", timeout=10).text
            assert NOISE not in text and "0.3" in text, (path, text)
    assert main(["conversations", "--db", str(db), "--json"]) == 0
    out = capsys.readouterr().out
    assert NOISE not in out and json.loads(out)["per_user"][0]["cost_usd"] == 0.3
    for command in ("conversations", "stats", "threads", "users"):  # the tables too
        assert main([command, "--db", str(db)]) == 0
        table = capsys.readouterr().out
        assert NOISE not in table and "0.3000" in table, (command, table)


def test_only_costs_are_rounded_and_strings_are_left_alone():
    text = strict_json({"cost_usd": 0.5791419500000002, "cost_p90": 1.2000000000000002e-05, "latency": 0.1 + 0.2,
                        "note": '"cost_usd": 0.30000000000000004', "inf": {"cost_usd": float("inf")}})
    assert json.loads(text) == {"cost_usd": 0.57914195, "cost_p90": 1.2e-05, "latency": 0.30000000000000004,
                                "note": '"cost_usd": 0.30000000000000004',
                                "inf": {"cost_usd": None, "cost_usd_overflow": True}}


def test_a_float_sum_never_leaks_as_noise_under_any_money_key():
    noisy = 0.1 + 0.2
    answer = {"totals": {"cost_usd": noisy, "cost_turns": 2},
              "per_model": ({"model": "gpt-4o", "cost_usd": noisy, "cost_p50": noisy, "cost_p90": noisy},),
              "pages": [[{"cost_usd": noisy, "latency_s": noisy}]], "whole_dollars": {"cost_usd": 3}}
    for indent in (None, 2):  # the read API's compact answers and the CLI's --json
        text = strict_json(answer, indent=indent)
        assert text.count(NOISE) == 1  # the latency's: not money
        assert json.loads(text) == {"totals": {"cost_usd": 0.3, "cost_turns": 2},
                                    "per_model": [{"model": "gpt-4o", "cost_usd": 0.3, "cost_p50": 0.3,
                                                   "cost_p90": 0.3}],
                                    "pages": [[{"cost_usd": 0.3, "latency_s": noisy}]],
                                    "whole_dollars": {"cost_usd": 3}}
