"""Latency percentiles as a newcomer checks them: the same latency on every call reads as that
latency (1.2 s, not the bin's centre 1.22 s) on the page's API, in ``trubrics-otel stats`` and by
hour, day and week; any other reads as the mean of the latencies in the 5 % bin its nearest
rank falls in. A store written before the bins kept their sums answers the same once upgraded."""

from __future__ import annotations

import datetime as dt
import math

import pytest
import requests

from trubrics_otel.server import LocalServer, Store
from trubrics_otel.server.analytics import schema as analytics_schema
from trubrics_otel.server.stats import StatsQuery, stats
from trubrics_otel.server.store import derived

from analytics_data import rounded
from old_schema import schema_before
from test_server_stats import T0, nearest_rank, sent_events, stats_cli

STEADY = 1.2  # seconds, on every call of the "steady" model


def events() -> tuple[list[dict], list[dict]]:
    """:func:`sent_events` (varied latencies, two models), and a third model always 1.2 s."""
    plain, llm = sent_events()
    steady = [{"user_id": f"user-{i % 4}", "prompt": "p", "generation": "g", "latency": STEADY,
               "timestamp": (T0 + dt.timedelta(minutes=37 * i)).isoformat(), "properties": {"model": "steady"}}
              for i in range(90)]
    return plain, llm + steady


def binned(latencies: list[float], p: float) -> float:
    """The nearest rank's bin (``round(ln(x) * 20)``), and the mean of the latencies in it."""
    def bin_of(x: float) -> int:
        return round(math.log(x) * derived.LATENCY_BINS_PER_E)
    rank = nearest_rank(sorted(latencies), p)
    inside = [x for x in latencies if bin_of(x) == bin_of(rank)]
    return sum(inside) / len(inside)


def check(got: dict, llm: list[dict]) -> None:
    latencies = [e["latency"] for e in llm]
    for key, p in (("latency_p50", 0.5), ("latency_p95", 0.95)):
        assert got[key] == pytest.approx(binned(latencies, p), abs=1e-6), key
        assert got[key] == pytest.approx(nearest_rank(sorted(latencies), p), rel=0.025), key


def in_bucket(llm: list[dict], start: str, width: dt.timedelta) -> list[dict]:
    low = dt.datetime.fromisoformat(start)
    return [e for e in llm if low <= dt.datetime.fromisoformat(e["timestamp"]) < low + width]


def test_a_steady_latency_reads_exactly_and_others_as_their_bins_mean(db_url):
    plain, llm = events()
    steady = [e for e in llm if e["properties"]["model"] == "steady"]
    with LocalServer(db_url) as server:
        for kind, batch in (("publish_events", plain), ("publish_llm_events", llm)):
            for start in range(0, len(batch), 100):
                requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, timeout=10,
                              json=batch[start:start + 100]).raise_for_status()
        api = f"{server.url}/api/analytics"
        for by, width in (("hour", dt.timedelta(hours=1)), ("day", dt.timedelta(days=1)),
                          ("week", dt.timedelta(weeks=1))):  # latency_hist by hour, analytics_latency by day
            one = requests.get(api, params={"by": by, "model": "steady"}, timeout=10).json()
            assert (one["totals"]["latency_p50"], one["totals"]["latency_p95"]) == (STEADY, STEADY)
            assert {b["latency_p50"] for b in one["buckets"] if b["llm_events"]} == {STEADY}
            split = requests.get(api, params={"by": by, "by_model": "1"}, timeout=10).json()
            check(split["totals"], llm)
            assert {b["latency_p95"] for b in split["models"]["steady"] if b["llm_events"]} == {STEADY}
            for bucket in split["buckets"]:
                if bucket["llm_events"]:
                    check(bucket, in_bucket(llm, bucket["start"], width))
        cut = requests.get(api, params={"by": "day", "model": "steady", "since": (T0 + dt.timedelta(hours=5)).isoformat(),
                                        "until": (T0 + dt.timedelta(hours=50)).isoformat()}, timeout=10).json()
        assert [b["latency_p50"] for b in cut["buckets"]] == [STEADY, STEADY, STEADY]  # hourly, daily, hourly
        cli = stats_cli("--url", server.url, "--model", "steady", "--by", "week")
        assert (cli["totals"]["latency_p50"], cli["totals"]["latency_p95"]) == (STEADY, STEADY)
        check(stats_cli("--url", server.url)["totals"], llm)
        assert len(steady) == cli["totals"]["llm_events"]


# The release before's fold of the two histograms: a count per bin, no sum.
BEFORE = f"""INSERT INTO latency_hist SELECT ts_us - ts_us % 3600000000, COALESCE(model, ''), event,
           {derived.LATENCY_BIN}, COUNT(*)
       FROM {{rows}} WHERE id > ? AND kind = 'llm' AND latency IS NOT NULL GROUP BY 1, 2, 3, 4
       ON CONFLICT (hour_us, model, event, bin) DO UPDATE SET n = latency_hist.n + excluded.n"""
DAILY_BEFORE = """CREATE TABLE IF NOT EXISTS analytics_latency (
        day_us BIGINT NOT NULL, model TEXT NOT NULL, event TEXT NOT NULL, bin INTEGER NOT NULL,
        n BIGINT NOT NULL, PRIMARY KEY (day_us, model, event, bin))"""


def release_before(m: pytest.MonkeyPatch, engine: str) -> None:
    """Store and analytics tables as the release before made and folded them."""
    schema_before(m, {"sqlite": 10, "postgresql": 6}[engine])
    m.setattr(derived, "_UPDATES", (*derived._UPDATES[:-1], BEFORE))
    m.setattr(analytics_schema, "VERSION", "7")
    m.setattr(analytics_schema, "STATEMENTS", tuple(DAILY_BEFORE if "analytics_latency (" in s else s
                                                    for s in analytics_schema.STATEMENTS))
    m.setattr(analytics_schema, "_latency", lambda db: BEFORE.replace("latency_hist", "analytics_latency").replace(
        "ts_us - ts_us % 3600000000", db.dialect.bucket_us("day", "ts_us")).replace("hour_us", "day_us")
        .replace("{rows}", db.dialect.new_rows()))


def answers(store: Store) -> list[dict]:
    with store.connection() as c:
        return [rounded(stats(c, StatsQuery(by=by, model=model), by_model=True))
                for by in ("hour", "day", "week") for model in (None, "steady")]


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_store_from_before_the_sums_reads_its_old_events_exactly(engine, tmp_path, request, monkeypatch):
    def location(name: str) -> str:
        return (str(tmp_path / f"{name}.sqlite3") if engine == "sqlite"
                else request.getfixturevalue("postgres_cluster").create_database())  # empty: not the template
    plain, llm = events()
    first, later = (plain[:50], llm[::2]), (plain[50:], llm[1::2])
    old_location = location("before")
    with monkeypatch.context() as m:
        release_before(m, engine)
        before = Store(old_location)
        before.insert(*first)
        with before.connection() as c:
            assert c.execute("SELECT SUM(n) FROM latency_hist").fetchone()[0] == len(first[1])
            bins = c.execute("SELECT DISTINCT bin FROM latency_hist WHERE model = 'steady'").fetchall()
        assert [round(math.exp(b / 20), 2) for (b,) in bins] == [1.22]  # what its P50 read: the bin's centre
        before.close()

    upgraded, fresh = Store(old_location), Store(location("fresh"))
    fresh.insert(*first)
    got = answers(upgraded)
    assert got == answers(fresh)
    assert {t["totals"]["latency_p50"] for t in got[1::2]} == {STEADY}  # the old events: exact
    check(got[0]["totals"], first[1])
    for store in (upgraded, fresh):  # new events fold in beside the old
        store.insert(*later)
    assert answers(upgraded) == answers(fresh)
    check(answers(upgraded)[2]["totals"], llm)
    upgraded.close()
    fresh.close()
