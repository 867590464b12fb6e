"""Every product analysis against figures recomputed here, in plain Python, from the raw events sent.

The events (tests/analytics_data.py) go through a real server over HTTP in shuffled batches,
so the maintained tables also see late, out-of-order rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import subprocess
import sys
from collections import defaultdict

import pytest
import requests

from analytics_data import FUNNEL, MODELS, T0, generate
from trubrics_otel.server import LocalServer
from trubrics_otel.server.analytics.api import answer, set_feedback_events

DAY = dt.timedelta(days=1)


def parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def week(moment: dt.datetime) -> dt.datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - dt.timedelta(days=day.weekday())


def bucket(moment: dt.datetime, period: str) -> dt.datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return {"day": day, "week": week(moment), "month": day.replace(day=1)}[period]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    plain, llm = generate()
    rng = random.Random(1)
    batches = [("publish_events", plain[i:i + 100]) for i in range(0, len(plain), 100)]
    batches += [("publish_llm_events", llm[i:i + 100]) for i in range(0, len(llm), 100)]
    rng.shuffle(batches)  # turns may arrive after their feedback, weeks out of order
    with LocalServer(tmp_path_factory.mktemp("analytics") / "events.sqlite3") as server:
        for kind, batch in batches:
            requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, json=batch,
                          timeout=30).raise_for_status()
        set_feedback_events(server.store, {"Thumbs down": 0.0})  # serve --feedback-event "Thumbs down=0"
        yield server, plain, llm


def every(plain, llm):
    return [(e["user_id"], parse(e["timestamp"]), e) for e in plain + llm]


def firsts_and_activity(plain, llm, period):
    """Each user's first event, and who was active in each period (by period, and by user)."""
    first: dict[str, dt.datetime] = {}
    by_period, by_user = defaultdict(set), defaultdict(set)
    for user, moment, _ in every(plain, llm):
        first[user] = min(first.get(user, moment), moment)
        by_period[bucket(moment, period)].add(user)
        by_user[user].add(bucket(moment, period))
    return first, by_period, by_user


def cli(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", *args, "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("period", ["day", "week", "month"])
def test_active_users_new_and_returning(served, period):
    server, plain, llm = served
    first, active, _ = firsts_and_activity(plain, llm, period)
    got = cli("active", "--period", period, "--db", str(server.store.path))
    starts = [parse(b["start"]) for b in got["buckets"]]
    assert starts[0] == min(active) and starts[-1] == max(active)
    assert len(starts) == len(set(starts)) and starts == sorted(starts)
    for b in got["buckets"]:
        users = active.get(parse(b["start"]), set())
        new = {u for u in users if bucket(first[u], period) == parse(b["start"])}
        assert (b["active"], b["new"], b["returning"]) == (len(users), len(new), len(users) - len(new)), b
    if period == "day":  # stickiness: mean DAU over the month's days shown / MAU
        for month in got["stickiness"]:
            start = parse(month["month"])
            days = [d for d in (bucket(s, "day") for s in starts) if bucket(d, "month") == start]
            dau = sum(len(active.get(d, ())) for d in days) / len(days)
            mau = len({u for u, m, _ in every(plain, llm) if bucket(m, "month") == start})
            assert (month["days"], month["mau"]) == (len(days), mau)
            assert month["stickiness"] == pytest.approx(dau / mau, abs=1e-6)


@pytest.mark.parametrize("period", ["day", "week"])
def test_retention_triangle(served, period):
    server, plain, llm = served
    first, _, active = firsts_and_activity(plain, llm, period)
    got = cli("retention", "--period", period, "--db", str(server.store.path))
    assert got["period"] == period
    step = DAY if period == "day" else 7 * DAY
    last = max(max(a) for a in active.values())
    for cohort in got["cohorts"]:
        start = parse(cohort["start"])
        members = [u for u in first if bucket(first[u], period) == start]
        length = (last - start) // step + 1
        want = [sum(1 for u in members if start + k * step in active[u]) for k in range(length)]
        assert cohort["users"] == len(members) and cohort["retained"] == want
        assert cohort["retained"][0] == cohort["users"]
    assert sum(c["users"] for c in got["cohorts"]) == len(first)


def test_retention_filtered_by_event_uses_only_those_events(served):
    server, plain, llm = served
    first: dict[str, dt.datetime] = {}
    active = defaultdict(set)
    for e in plain:
        if e["event"] == "Open app":
            moment = parse(e["timestamp"])
            first[e["user_id"]] = min(first.get(e["user_id"], moment), moment)
            active[e["user_id"]].add(week(moment))
    got = answer(server.store, "retention", {"period": "week", "event": "Open app"})
    for cohort in got["cohorts"]:
        start = parse(cohort["start"])
        members = [u for u in first if week(first[u]) == start]
        assert cohort["retained"] == [sum(1 for u in members if start + dt.timedelta(weeks=k) in active[u])
                                      for k in range(len(cohort["retained"]))]


def reached(events: list[tuple[dt.datetime, int, str]], steps, window) -> int:
    """How far a user gets: the best over their step-1 events, each followed greedily."""
    best = 0
    for i, (t1, _, name) in enumerate(events):
        if name != steps[0]:
            continue
        depth, j = 1, i
        for step in steps[1:]:
            j = next((k for k in range(j + 1, len(events)) if events[k][2] == step
                      and events[k][0] <= t1 + window), None)
            if j is None:
                break
            depth += 1
        best = max(best, depth)
    return best


@pytest.mark.parametrize("within", ["2d", "7d"])
def test_funnel_conversion_per_step(served, within):
    server, plain, llm = served
    window = dt.timedelta(days=int(within[:-1]))
    per_user = defaultdict(list)
    for order, e in enumerate(plain):
        if e["event"] in FUNNEL:
            per_user[e["user_id"]].append((parse(e["timestamp"]), order, e["event"]))
    depths = [reached(sorted(v), FUNNEL, window) for v in per_user.values()]
    got = cli("funnel", "--steps", ",".join(FUNNEL), "--within", within, "--db", str(server.store.path))
    assert [s["users"] for s in got["steps"]] == [sum(1 for d in depths if d > k) for k in range(3)]
    assert got["steps"][1]["users"] < got["steps"][0]["users"]  # the planted drop-off shows


def test_funnel_breakdown_by_property_adds_up(served):
    server, _, _ = served
    got = answer(server.store, "funnel", {"steps": ",".join(FUNNEL), "within": "7d", "breakdown": "property:plan"})
    assert {b["value"] for b in got["breakdown"]} == {"free", "team"}
    for k, step in enumerate(got["steps"]):
        assert sum(b["steps"][k] for b in got["breakdown"]) == step["users"]


def feedback_rows(plain, llm):
    """(event, value or label, thread, the turn it rates) for every event that is feedback."""
    turns_by_span = {(e["properties"]["$trace_id"], e["properties"]["$span_id"]): e for e in llm}
    by_thread = defaultdict(list)
    for e in llm:
        by_thread[e["properties"]["$thread_id"]].append(e)
    rows = []
    for e in plain:
        p = e["properties"]
        if p.get("observation_type") == "span":
            continue
        if e["event"] == "Score":
            raw, turn = p["value"], turns_by_span[(p["trace_id"], p["observation_id"])]
        elif "$feedback" in p:
            raw, turn = p["$feedback"], None
        elif e["event"] == "Thumbs down":
            raw, turn = 0.0, None
        else:
            continue
        if turn is None:  # the thread's latest turn at or before it
            turn = max((t for t in by_thread[p["$thread_id"]] if t["timestamp"] <= e["timestamp"]),
                       key=lambda t: t["timestamp"])
        value = None if isinstance(raw, str) else float(raw)
        rows.append((e, value, p["$thread_id"], turn))
    return rows


def test_feedback_counts_rates_and_models(served):
    server, plain, llm = served
    rows = feedback_rows(plain, llm)
    got = cli("feedback", "--db", str(server.store.path))
    totals = got["totals"]
    assert totals["feedback"] == len(rows)
    assert totals["positive"] == sum(1 for _, v, _, _ in rows if v is not None and v >= 0.5)
    assert totals["negative"] == sum(1 for _, v, _, _ in rows if v is not None and v < 0.5)
    threads = {e["properties"]["$thread_id"] for e in llm}
    assert (totals["threads"], totals["llm_turns"]) == (len(threads), len(llm))
    assert totals["threads_with_feedback"] == len({t for _, _, t, _ in rows})
    assert totals["turns_with_feedback"] == len({id(turn) for _, _, _, turn in rows})
    per_model = defaultdict(int)
    for _, _, _, turn in rows:
        per_model[turn["properties"]["model"]] += 1
    assert {m["model"]: m["feedback"] for m in got["by_model"]} == dict(per_model)
    assert set(per_model) == set(MODELS)
    labels = {r["label"] for r in got["recent"]}
    assert "great" in labels or len(got["recent"]) == 50  # categorical scores keep their value
    days = defaultdict(int)
    for e, _, _, _ in rows:
        days[parse(e["timestamp"]).date().isoformat()] += 1
    assert {d["day"][:10]: d["feedback"] for d in got["by_day"]} == dict(days)


def nearest(values, p):
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def test_conversations_percentiles_and_abandonment(served):
    server, plain, llm = served
    threads = defaultdict(list)
    for e in llm:
        threads[e["properties"]["$thread_id"]].append(e)
    negative_turns = {id(turn) for _, v, _, turn in feedback_rows(plain, llm) if v is not None and v < 0.5}
    turns = [len(t) for t in threads.values()]
    costs = [sum(e["properties"].get("cost_usd", 0) for e in t) for t in threads.values()
             if any("cost_usd" in e["properties"] for e in t)]
    abandoned = 0
    for t in threads.values():
        last = max(t, key=lambda e: e["timestamp"])
        abandoned += "error.type" in last["properties"] or id(last) in negative_turns
    got = cli("conversations", "--db", str(server.store.path))
    assert got["threads"] == len(threads)
    assert (got["turns_p50"], got["turns_p90"]) == (nearest(turns, 0.5), nearest(turns, 0.9))
    assert got["cost_p50"] == pytest.approx(nearest(costs, 0.5)) and got["cost_p90"] == pytest.approx(nearest(costs, 0.9))
    assert got["abandoned"] == abandoned
    assert got["errors"] == sum(1 for e in llm if "error.type" in e["properties"])
    durations = [(max(parse(e["timestamp"]) + dt.timedelta(seconds=e["latency"]) for e in t)
                  - min(parse(e["timestamp"]) for e in t)).total_seconds() for t in threads.values()]
    assert got["duration_p50_s"] == pytest.approx(nearest(durations, 0.5))
    per_user = defaultdict(int)
    for t in threads.values():
        per_user[min(t, key=lambda e: e["timestamp"])["user_id"]] += 1
    assert {u["user_id"]: u["threads"] for u in got["per_user"]}.items() <= per_user.items()
    assert got["users"] == len(per_user)


def test_conversations_for_one_user_and_a_range(served):
    server, plain, llm = served
    since = T0 + dt.timedelta(days=14)
    threads = defaultdict(list)
    for e in llm:
        threads[e["properties"]["$thread_id"]].append(e)
    mine = [t for t in threads.values() if min(parse(e["timestamp"]) for e in t) >= since
            and min(t, key=lambda e: e["timestamp"])["user_id"] == "user-007"]
    got = answer(server.store, "conversations", {"user": "user-007", "since": since.isoformat()})
    assert got["threads"] == len(mine) and got["turns"] == sum(len(t) for t in mine)


def test_topics_recover_the_planted_ones(served):
    server, plain, llm = served
    got = cli("topics", "--db", str(server.store.path))
    assert got["prompts"] == len(llm)
    # no topic mixes two planted topics (one may split by question: its phrasings share few
    # words), and a topic's terms name the planted one it holds
    with server.store.connection() as c:
        stored = c.execute("SELECT p.topic, e.prompt FROM analytics_prompts p JOIN events e ON e.id = p.event_id").fetchall()
    planted = defaultdict(set)
    for topic, prompt in stored:
        planted[topic] |= {a for a in ("refund", "password", "invoice", "shipping") if a in prompt}
    terms = {t["topic"]: t["terms"] for t in got["topics"]}
    assert 4 <= len(planted) <= 20 and -1 not in planted
    assert all(len(anchors) == 1 and anchors <= set(terms[topic]) for topic, anchors in planted.items()), planted
    assert sum(t["errors"] for t in got["topics"]) == sum(1 for e in llm if "error.type" in e["properties"])
    # the planted rephrasings (the previous prompt + " please") are found
    planted = sum(1 for a, b in zip(llm, llm[1:]) if b["prompt"] == a["prompt"] + " please")
    assert sum(t["rephrases"] for t in got["topics"]) >= planted


def test_the_read_api_answers_what_the_cli_does(served):
    server, _, _ = served
    for name, extra in (("active", ["--period", "week"]), ("retention", []), ("feedback", []),
                        ("conversations", []), ("funnel", ["--steps", "Sign up,Upgrade"]), ("topics", [])):
        assert cli(name, "--url", server.url, *extra) == cli(name, "--db", str(server.store.path), *extra), name


def test_bad_arguments_are_one_line_and_exit_2(served, tmp_path):
    server, _, _ = served
    for args in (["funnel", "--steps", "only-one"], ["funnel", "--steps", "a,b", "--within", "soon"],
                 ["active", "--since", "yesterday"], ["funnel", "--steps", "a,b", "--breakdown", "colour"]):
        done = subprocess.run([sys.executable, "-m", "trubrics_otel.cli", *args, "--db", str(server.store.path)],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)
    response = requests.get(f"{server.url}/api/funnel", params={"steps": "x"}, timeout=10)
    assert response.status_code == 400 and "steps" in response.json()["detail"]
    response = requests.get(f"{server.url}/api/topics", params={"refit": "yes"}, timeout=10)
    assert response.status_code == 400 and "refit" in response.json()["detail"]


def test_serve_feedback_event_option_parses_name_and_value():
    from trubrics_otel.server.cli.serve import feedback_mapping

    assert feedback_mapping("Thumbs up=1") == ("Thumbs up", 1.0)
    assert feedback_mapping("a=b=0") == ("a=b", 0.0)
    for bad in ("Thumbs up", "=1", "x=nan", "x=good"):
        with pytest.raises(Exception, match="NAME=NUMBER"):
            feedback_mapping(bad)


def test_topics_stay_current_as_prompts_arrive(tmp_path):
    """New prompts are assigned to the fitted topics; the topics are fitted again once the
    prompts have doubled."""
    from trubrics_otel.server.store import Store

    plain, llm = generate(users=40)
    store = Store(tmp_path / "t.sqlite3")
    half = len(llm) // 2
    store.insert([], llm[:half])
    first = answer(store, "topics", {})
    assert first["prompts"] == half
    store.insert([], llm[half:half + 10])
    assert answer(store, "topics", {})["prompts"] == half + 10  # assigned, not refitted
    with store.connection() as c:
        fitted = dict(c.execute("SELECT key, value FROM analytics_meta WHERE key LIKE 'topics_%'").fetchall())
    assert fitted["topics_fit_n"] == str(half)
    store.insert([], llm[half + 10:])
    assert answer(store, "topics", {})["prompts"] == len(llm)
    with store.connection() as c:
        refit = dict(c.execute("SELECT key, value FROM analytics_meta WHERE key LIKE 'topics_%'").fetchall())
    assert refit["topics_fit_n"] == str(len(llm))  # doubled: fitted again over every prompt
