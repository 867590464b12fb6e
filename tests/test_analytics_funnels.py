"""Funnels on both engines against the definition, checked by exhaustive search in plain Python.

A user counts at step k if they did step 1, then step 2 strictly after it (time, then insertion
order), … step k after step k-1, all within the window (inclusive) of the step-1 event; of their
step-1 events the one that leads furthest counts, the earliest among equals, and its model or
property is the user's breakdown value. ``since``/``until``/``user``/``model`` choose the
step-1 events. The events below force the edge cases: timestamps on a coarse grid (ties), few
names (repeated steps), an LLM event matching by its generation or its prompt name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import random
from importlib import resources
from typing import Any

import pytest

from trubrics_otel.server.analytics import schema
from trubrics_otel.server.analytics.api import answer
from trubrics_otel.server.store import Store, migrations, postgres

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
MINUTE_US = 60_000_000
NAMES = ("A", "B", "C")


def _at(minutes: int) -> str:
    return (T0 + dt.timedelta(minutes=minutes)).isoformat()


def _plain(user: str, name: str, minutes: int, plan: str | None = None) -> dict[str, Any]:
    return {"user_id": user, "event": name, "timestamp": _at(minutes), "properties": {} if plan is None else {"plan": plan}}


def _llm(user: str, minutes: int, generation: str, prompt: str, model: str) -> dict[str, Any]:
    return {"user_id": user, "prompt": "p", "generation": "g", "timestamp": _at(minutes), "generation_event_name": generation,
            "prompt_event_name": prompt, "properties": {"model": model}}


class Sent:
    """Events as stored, in insertion order (their ids): each batch is all plain or all LLM."""

    def __init__(self, store: Store) -> None:
        self.store, self.rows = store, []

    def send(self, batch: list[dict[str, Any]]) -> None:
        llm = "prompt" in batch[0]
        self.store.insert(*(((), batch) if llm else (batch, ())))
        for e in batch:
            names = {e["generation_event_name"], e["prompt_event_name"]} if llm else {e["event"]}
            props = e["properties"]
            self.rows.append({"seq": len(self.rows), "user": e["user_id"], "names": names,
                              "ts": (dt.datetime.fromisoformat(e["timestamp"]) - T0) // dt.timedelta(microseconds=1),
                              "model": props.get("model") if llm else None, "props": props})


def expected(rows: list[dict], steps: list[str], within_us: int, since: int | None = None, until: int | None = None,
             user: str | None = None, model: str | None = None, breakdown: str | None = None) -> dict[str, Any]:
    """Every start of every user, every choice of later events (no greedy shortcut)."""
    by_user: dict[str, list[dict]] = {}
    for r in sorted(rows, key=lambda r: (r["ts"], r["seq"])):
        by_user.setdefault(r["user"], []).append(r)
    totals, groups = [0] * len(steps), {}
    for who, events in by_user.items():
        @functools.lru_cache(maxsize=None)
        def depth(k: int, at: int, t1: int) -> int:  # steps reached from event `at`, which matched step k-1
            if k == len(steps):
                return 0
            return max([1 + depth(k + 1, j, t1) for j in range(at + 1, len(events))
                        if steps[k] in events[j]["names"] and events[j]["ts"] <= t1 + within_us], default=0)

        starts = [i for i, e in enumerate(events) if steps[0] in e["names"]
                  and (since is None or e["ts"] >= since) and (until is None or e["ts"] < until)
                  and (user is None or who == user) and (model is None or e["model"] == model)]
        if not starts:
            continue
        best = max(starts, key=lambda i: (1 + depth(1, i, events[i]["ts"]), -i))  # deepest, then earliest
        reached = 1 + depth(1, best, events[best]["ts"])
        start = events[best]
        value = start["model"] if breakdown == "model" else start["props"].get("plan") if breakdown else None
        for k in range(reached):
            totals[k] += 1
            groups.setdefault("(none)" if value is None else str(value), [0] * len(steps))[k] += 1
    result = {"steps": totals}
    if breakdown:
        result["breakdown"] = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return result


def got(store: Store, steps: list[str], within_us: int, **params: Any) -> dict[str, Any]:
    params = {k: v for k, v in params.items() if v is not None}
    for bound in ("since", "until"):
        if bound in params:
            params[bound] = (T0 + dt.timedelta(microseconds=params[bound])).isoformat()
    answered = answer(store, "funnel", {"steps": ",".join(steps), "within": f"{within_us // 1_000_000}s", **params})
    result = {"steps": [s["users"] for s in answered["steps"]]}
    if "breakdown" in answered:
        result["breakdown"] = [(b["value"], b["steps"]) for b in answered["breakdown"]]
    return result


@pytest.fixture(scope="module")
def random_store(module_db_url):
    """Forty users, a dozen events each on a 5-minute grid (many ties), sent in shuffled batches."""
    rng = random.Random(11)
    store = Store(module_db_url)
    sent = Sent(store)
    pending = []
    for u in range(40):
        user = f"u{u:02d}"
        for _ in range(rng.randint(1, 14)):
            minutes = 5 * rng.randint(0, 30)
            if rng.random() < 0.25:
                pending.append(_llm(user, minutes, rng.choice(("Generation", "C")), rng.choice(("Prompt", "B")),
                                    rng.choice(("m1", "m2"))))
            else:
                pending.append(_plain(user, rng.choice(NAMES), minutes, rng.choice(("free", "team", None))))
    rng.shuffle(pending)
    while pending:  # batches of one kind, late and out-of-order rows included
        kind = "prompt" in pending[0]
        batch = [e for e in pending[:9] if ("prompt" in e) == kind]
        pending = [e for e in pending if not any(e is b for b in batch)]
        sent.send(batch)
    yield store, sent.rows
    store.close()


CASES = [
    (["A", "B"], 15, {}), (["A", "B", "C"], 30, {}), (["A", "A"], 20, {}), (["A", "A", "A"], 60, {}),
    (["B", "A", "B"], 25, {}), (["A", "B", "C"], 10, {"breakdown": "model"}),
    (["A", "C"], 40, {"breakdown": "property:plan"}), (["Prompt", "A"], 30, {"breakdown": "model"}),
    (["A", "B", "C"], 30, {"since": 20 * MINUTE_US, "until": 90 * MINUTE_US}),
    (["A", "B"], 30, {"user": "u03"}), (["Generation", "B"], 45, {"model": "m1"}),
    (["C", "B", "A"], 50, {"model": "m2", "breakdown": "property:plan", "since": 10 * MINUTE_US}),
]


@pytest.mark.parametrize("steps,minutes,filters", CASES, ids=[",".join(c[0]) + f"-{i}" for i, c in enumerate(CASES)])
def test_funnel_matches_the_definition_on_random_events(random_store, steps, minutes, filters):
    store, rows = random_store
    assert got(store, steps, minutes * MINUTE_US, **filters) == expected(rows, steps, minutes * MINUTE_US, **filters)


def test_funnel_edge_cases_of_the_definition(db_url):
    store = Store(db_url)
    sent = Sent(store)
    # the start that leads furthest is the second: its value is the user's
    sent.send([_plain("later", "A", 0, "free"), _plain("later", "A", 100, "team"), _plain("later", "B", 105),
               _plain("later", "C", 110)])
    # equal depth: the earliest start wins
    sent.send([_plain("equal", "A", 0, "free"), _plain("equal", "B", 1), _plain("equal", "A", 100, "team"),
               _plain("equal", "B", 101)])
    # the same time: a step inserted after the previous one follows it, one inserted before does not
    sent.send([_plain("tie", "A", 0, "free"), _plain("tie", "B", 0)])
    sent.send([_plain("tie-before", "B", 0), _plain("tie-before", "A", 0, "free")])
    # the window's end is inclusive: 10 minutes after the start counts, a microsecond more does not
    sent.send([_plain("edge", "A", 0, "free"), _plain("edge", "B", 10)])
    late = _plain("edge-late", "B", 10)
    late["timestamp"] = (T0 + dt.timedelta(minutes=10, microseconds=1)).isoformat()
    sent.send([_plain("edge-late", "A", 0, "free"), late])
    # a repeated step needs a second occurrence; an LLM event matches by its prompt name
    sent.send([_plain("again", "A", 0, "team"), _plain("again", "A", 3)])
    sent.send([_llm("prompted", 2, "Generation", "B", "m1")])
    sent.send([_plain("prompted", "A", 0, "team")])
    window = 10 * MINUTE_US
    ab = got(store, ["A", "B"], window)
    assert ab == expected(sent.rows, ["A", "B"], window)
    # later, equal, tie, edge, prompted: reached B; tie-before, edge-late, again: did not
    assert ab["steps"] == [8, 5]
    assert got(store, ["A", "A"], window) == expected(sent.rows, ["A", "A"], window) == {"steps": [8, 1]}
    by_plan = got(store, ["A", "B", "C"], window, breakdown="property:plan")
    assert by_plan == expected(sent.rows, ["A", "B", "C"], window, breakdown="property:plan")
    assert dict(by_plan["breakdown"])["team"] == [3, 2, 1]  # "later" counts under its second start's plan
    assert dict(by_plan["breakdown"])["free"] == [5, 3, 0]  # "equal" under its first
    store.close()


def test_an_llm_event_whose_prompt_has_its_name_is_one_occurrence_of_it(db_url):
    """An LLM event whose prompt and generation share a name is stored under it once (PostgreSQL's
    insert writes the funnels' table without ``ON CONFLICT``: a second row would fail the batch)
    and counts once: a repeated step needs another event."""
    store = Store(db_url)
    sent = Sent(store)
    sent.send([_llm("same", 0, "Ask", "Ask", "m1"), _llm("same", 1, "Answer", "Ask", "m1"),
               _llm("once", 0, "Ask", "Ask", "m2")])
    window = 10 * MINUTE_US
    assert got(store, ["Ask", "Ask"], window) == expected(sent.rows, ["Ask", "Ask"], window) == {"steps": [2, 1]}
    assert got(store, ["Ask", "Answer"], window) == expected(sent.rows, ["Ask", "Answer"], window) == {"steps": [2, 1]}
    store.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_store_from_before_the_funnel_table_is_filled_when_opened(engine, tmp_path, request, monkeypatch):
    """A store written by the release before (its migrations, no funnel table to keep) gains
    the table, filled from its events, on opening; new events then join it."""
    db_url = (str(tmp_path / "events.sqlite3") if engine == "sqlite"
              else request.getfixturevalue("postgres_cluster").create_database())  # empty: not the template
    folder = resources.files("trubrics_otel.server.store").joinpath("schema", "sqlite")
    ours = next(int(f.name[:3]) for f in folder.iterdir() if f.name.endswith("_funnel_steps.sql"))
    every = migrations.steps
    with monkeypatch.context() as old:
        old.setattr(migrations, "steps", lambda engine: tuple(s for s in every(engine) if s[0] != ours))
        old.setattr(schema, "_steps", lambda db, own=False: [])
        if engine == "postgresql":  # nor the search words of PostgreSQL's schema 3
            old.setattr(postgres, "_INSERT", postgres._unnest_insert(postgres.COLUMNS))
            old.setattr(postgres, "_columns", lambda rows, ids, columns=postgres._columns: columns(rows, ids)[:-1])
        before = Store(db_url)
        sent = Sent(before)
        sent.send([_plain("old", "A", 0, "free"), _plain("old", "B", 5), _plain("gone", "A", 0, "team")])
        sent.send([_llm("old", 7, "Generation", "C", "m1")])
        with before.connection() as c:
            assert not c.execute("SELECT COUNT(*) FROM schema_version WHERE version = ?", (ours,)).fetchone()[0]
        before.close()
    store = Store(db_url)
    with store.connection() as c:
        assert c.execute("SELECT COUNT(*) FROM schema_version WHERE version = ?", (ours,)).fetchone()[0] == 1
    sent.store = store
    sent.send([_plain("gone", "B", 3), _plain("new", "A", 1, "team"), _plain("new", "C", 2)])
    for steps in (["A", "B", "C"], ["A", "C"]):
        assert got(store, steps, 10 * MINUTE_US, breakdown="property:plan") == expected(
            sent.rows, steps, 10 * MINUTE_US, breakdown="property:plan")
    assert got(store, ["A", "B", "C"], 10 * MINUTE_US)["steps"] == [3, 2, 1]
    store.close()


def test_every_pooled_postgresql_connection_reads_without_jit(request):
    """JIT compiling our reads (index look-ups whose estimated cost passes jit_above_cost) took
    longer than running them: every connection of the store's pool has it off, before and after
    a funnel, while the server's default stays on for other clients."""
    import psycopg

    store = Store(request.getfixturevalue("postgres_cluster").create_database())
    Sent(store).send([_plain("u", "A", 0, "free"), _plain("u", "B", 5)])

    def settings() -> set[str]:
        with contextlib.ExitStack() as held:  # every connection of the pool (8) at once
            return {held.enter_context(store.connection()).rows("SELECT current_setting('jit')")[0][0]
                    for _ in range(8)}

    assert settings() == {"off"}
    assert got(store, ["A", "B"], 10 * MINUTE_US, breakdown="property:plan")["steps"] == [1, 1]
    assert settings() == {"off"}
    with psycopg.connect(store.engine.url) as other:
        assert other.execute("SELECT current_setting('jit')").fetchone()[0] == "on"
    store.close()
