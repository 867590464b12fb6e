"""``trubrics-otel stats`` and ``/api/analytics`` against totals computed here from the events sent."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import subprocess
import sys

import pytest
import requests

from trubrics_otel.server import LocalServer, Store

T0 = dt.datetime(2026, 3, 2, 0, 0, tzinfo=dt.timezone.utc)  # a Monday
MODELS = ("gpt-4o", "claude-sonnet-4")
HOUR = dt.timedelta(hours=1)


def sent_events(seed: int = 5) -> tuple[list[dict], list[dict]]:
    """Three days of product and LLM events from 6 users; some LLM events have no cost."""
    rng = random.Random(seed)
    plain, llm = [], []
    for i in range(240):
        moment = T0 + dt.timedelta(minutes=rng.randrange(3 * 24 * 60), seconds=rng.randrange(60))
        user = f"user-{rng.randrange(6)}"
        if i % 3:
            props = {"model": rng.choice(MODELS), "input_tokens": rng.randint(1, 500),
                     "output_tokens": rng.randint(1, 300), "$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}
            if i % 5:
                props["cost_usd"] = rng.randint(1, 900) / 10_000
            if i % 17 == 0:
                props["error.type"] = "RateLimitError"
            llm.append({"user_id": user, "prompt": f"p{i}", "generation": f"g{i}", "timestamp": moment.isoformat(),
                        "latency": round(rng.uniform(0.2, 9.0), 3), "properties": props})
        else:
            ids = {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}
            plain.append({"user_id": user, "event": rng.choice(("Page view", "Thumbs up")),
                          "timestamp": moment.isoformat(), "properties": ids})
    return plain, llm


def expected(plain: list[dict], llm: list[dict]) -> dict:
    """The totals, written plainly from what was sent."""
    costs = [e["properties"]["cost_usd"] for e in llm if "cost_usd" in e["properties"]]
    latencies = sorted(e["latency"] for e in llm)
    return {
        "events": len(plain) + len(llm), "llm_events": len(llm),
        "users": len({e["user_id"] for e in plain + llm}),
        "input_tokens": sum(e["properties"]["input_tokens"] for e in llm),
        "output_tokens": sum(e["properties"]["output_tokens"] for e in llm),
        "cost_usd": sum(costs) if costs else None,
        "errors": sum("error.type" in e["properties"] for e in llm),
        "latency_p50": nearest_rank(latencies, 0.5) if latencies else None,
        "latency_p95": nearest_rank(latencies, 0.95) if latencies else None,
    }


def nearest_rank(ordered: list[float], p: float) -> float:
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def assert_matches(got: dict, want: dict, exact_latency: bool = False) -> None:
    for key in ("events", "llm_events", "users", "input_tokens", "output_tokens", "errors"):
        assert got[key] == want[key], key
    if want["cost_usd"] is None:
        assert got["cost_usd"] is None
    else:
        assert got["cost_usd"] == pytest.approx(want["cost_usd"])
    for key in ("latency_p50", "latency_p95"):
        if want[key] is None:
            assert got[key] is None
        else:  # the mean of the rank's 5 % log bin (at most a bin's width off; within 2.6 % on
            # this data), exact when read from one user's events
            assert got[key] == pytest.approx(want[key], rel=1e-9 if exact_latency else 0.026), key


def stats_cli(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", "stats", "--json", *args],
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def server(module_db_url):
    plain, llm = sent_events()
    with LocalServer(module_db_url) as server:  # each engine (conftest)
        for kind, batch in (("publish_events", plain), ("publish_llm_events", llm)):
            for start in range(0, len(batch), 100):
                requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, timeout=10,
                              json=batch[start:start + 100]).raise_for_status()
        yield server, plain, llm


def test_stats_json_totals_and_days_match_the_events_sent(server):
    server, plain, llm = server
    result = stats_cli("--db", server.store.location)
    assert_matches(result["totals"], expected(plain, llm))
    assert [b["start"] for b in result["buckets"]] == [
        (T0 + dt.timedelta(days=d)).isoformat() for d in range(3)]
    for d, bucket in enumerate(result["buckets"]):
        day = (T0 + dt.timedelta(days=d)).date().isoformat()
        assert_matches(bucket, expected(*[[e for e in x if e["timestamp"][:10] == day] for x in (plain, llm)]))
    assert sum(b["events"] for b in result["buckets"]) == len(plain) + len(llm)


def test_stats_filters_and_hour_buckets(server):
    server, plain, llm = server
    db = server.store.location
    by_model = stats_cli("--db", db, "--model", "gpt-4o", "--by", "week")
    assert_matches(by_model["totals"], expected([], [e for e in llm if e["properties"]["model"] == "gpt-4o"]))
    assert [b["start"] for b in by_model["buckets"]] == [T0.isoformat()]  # weeks start on Monday

    for bucket in by_model["buckets"]:
        assert bucket["users"] == len({e["user_id"] for e in llm if e["properties"]["model"] == "gpt-4o"})
    daily = requests.get(f"{server.url}/api/analytics", params={"by": "day", "model": "gpt-4o"}, timeout=10).json()
    assert_matches(daily["totals"], by_model["totals"])  # three days: a total over several buckets
    for bucket in daily["buckets"]:
        assert bucket["users"] == len({e["user_id"] for e in llm if e["properties"]["model"] == "gpt-4o"
                                       and e["timestamp"][:10] == bucket["start"][:10]})

    one_user = stats_cli("--db", db, "--user", "user-3")
    assert_matches(one_user["totals"], expected(*[[e for e in x if e["user_id"] == "user-3"] for x in (plain, llm)]),
                   exact_latency=True)

    thumbs = stats_cli("--db", db, "--event", "Thumbs up")
    assert_matches(thumbs["totals"], expected([e for e in plain if e["event"] == "Thumbs up"], []))

    since, until = T0 + dt.timedelta(hours=30), T0 + dt.timedelta(hours=36)
    window = stats_cli("--db", db, "--by", "hour", "--since", since.isoformat(), "--until", until.isoformat())
    assert len(window["buckets"]) == 6
    inside = [[e for e in x if since <= dt.datetime.fromisoformat(e["timestamp"]) < until] for x in (plain, llm)]
    assert_matches(window["totals"], expected(*inside))


def test_api_matches_the_cli_and_splits_by_model(server):
    server, plain, llm = server
    api = requests.get(f"{server.url}/api/analytics", params={"by": "day", "by_model": "1"}, timeout=10).json()
    assert api["totals"] == stats_cli("--url", server.url)["totals"]
    assert sorted(api["models"]) == sorted(MODELS)
    for model, series in api["models"].items():
        assert sum(b["llm_events"] for b in series) == sum(e["properties"]["model"] == model for e in llm)
        assert sum(b["errors"] for b in series) == sum(
            e["properties"]["model"] == model and "error.type" in e["properties"] for e in llm)
        for bucket in series:  # each model's own latencies, day by day
            mine = [e for e in llm if e["properties"]["model"] == model and e["timestamp"][:10] == bucket["start"][:10]]
            want = expected([], mine)
            assert bucket["llm_events"] == len(mine) and bucket["users"] == 0
            assert bucket["latency_p95"] == pytest.approx(want["latency_p95"], rel=0.026)
    assert requests.get(f"{server.url}/api/analytics", params={"by": "month"}, timeout=10).status_code == 400


def test_a_range_open_on_one_side_counts_the_users_active_in_it(server):
    """``since`` alone or ``until`` alone (the users table answers those totals): the distinct
    users of the events inside, in all and hour by hour."""
    server, plain, llm = server
    since, until = T0 + dt.timedelta(hours=70), T0 + dt.timedelta(hours=2)  # a few users each
    for params, inside in (({"since": since.isoformat()}, lambda t: t >= since),
                           ({"until": until.isoformat()}, lambda t: t < until)):
        got = requests.get(f"{server.url}/api/analytics", params={"by": "hour", **params}, timeout=10).json()
        kept = [[e for e in x if inside(dt.datetime.fromisoformat(e["timestamp"]))] for x in (plain, llm)]
        assert_matches(got["totals"], expected(*kept))
        assert 0 < got["totals"]["users"] < len({e["user_id"] for e in plain + llm})
        assert len(got["buckets"]) == 2
        for bucket in got["buckets"]:
            start = dt.datetime.fromisoformat(bucket["start"])
            hour = [e for e in plain + llm if start <= dt.datetime.fromisoformat(e["timestamp"]) < start + HOUR]
            assert bucket["users"] == len({e["user_id"] for e in hour}), bucket["start"]


def test_days_cut_by_the_range_count_only_their_hours_inside(server):
    """By day from 10:00 on the first day to 12:00 on the third: the first and last days count
    only their hours inside (read hourly), the middle one all of it (read from the daily
    tables); every count and percentile as the events inside give it."""
    server, plain, llm = server
    since, until = T0 + dt.timedelta(hours=10), T0 + dt.timedelta(hours=60)
    for by_model, model in (("", None), ("1", None), ("", "gpt-4o")):
        got = requests.get(f"{server.url}/api/analytics", timeout=10, params={
            "by": "day", "since": since.isoformat(), "until": until.isoformat(), "by_model": by_model,
            **({"model": model} if model else {})}).json()
        inside = [[e for e in x if since <= dt.datetime.fromisoformat(e["timestamp"]) < until
                   and (model is None or e["properties"].get("model") == model)] for x in (plain, llm)]
        assert_matches(got["totals"], expected(*inside))
        assert len(got["buckets"]) == 3
        for bucket in got["buckets"]:
            assert_matches(bucket, expected(*[[e for e in x if e["timestamp"][:10] == bucket["start"][:10]]
                                              for x in inside]))
        for model, series in got.get("models", {}).items():
            for bucket in series:
                mine = [e for e in inside[1] if e["properties"]["model"] == model
                        and e["timestamp"][:10] == bucket["start"][:10]]
                assert bucket["llm_events"] == len(mine)
                assert bucket["latency_p50"] == pytest.approx(expected([], mine)["latency_p50"], rel=0.026)


def test_stats_on_an_empty_or_missing_store(tmp_path, monkeypatch):
    monkeypatch.delenv("TRUBRICS_DB", raising=False)  # the default, nothing stored yet
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert stats_cli()["buckets"] == []  # (an explicit --db or TRUBRICS_DB that does not exist is refused)
    with Store(tmp_path / "empty.sqlite3").connection():
        pass
    result = stats_cli("--db", str(tmp_path / "empty.sqlite3"))
    assert result["buckets"] == [] and result["totals"]["events"] == 0 and result["totals"]["cost_usd"] is None


def test_reads_need_the_key_when_the_server_is_not_loopback_only(tmp_path):
    with LocalServer(tmp_path / "a.sqlite3", api_key="read-secret", read_needs_key=True) as server:
        assert requests.get(f"{server.url}/api/events", timeout=10).status_code == 401
        assert requests.get(f"{server.url}/api/stats", headers={"x-api-key": "wrong"}, timeout=10).status_code == 401
        assert requests.get(f"{server.url}/api/stats", headers={"x-api-key": "read-secret"}, timeout=10).ok
        assert requests.get(server.url + "/", timeout=10).ok  # the page holds no data
        assert stats_cli("--url", server.url, "--api-key", "read-secret")["buckets"] == []
    with LocalServer(tmp_path / "b.sqlite3", read_needs_key=True) as server:  # no key configured
        response = requests.get(f"{server.url}/api/events", headers={"x-api-key": "any"}, timeout=10)
        assert response.status_code == 403
    with LocalServer(tmp_path / "c.sqlite3") as server:  # 127.0.0.1: open to local readers
        assert requests.get(f"{server.url}/api/events", timeout=10).json() == []
