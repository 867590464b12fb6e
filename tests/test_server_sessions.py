"""Sessions and threads as the local store computes them."""

from __future__ import annotations

import datetime as dt
import random

import pytest
import requests

from trubrics_otel.cli import main
from trubrics_otel.server import LocalServer, Store

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
MINUTE = dt.timedelta(minutes=1)


def at(offset: dt.timedelta) -> str:
    return (T0 + offset).isoformat()


def ev(name, user="u1", offset=dt.timedelta(0), **properties):
    return {"user_id": user, "event": name, "properties": properties, "timestamp": at(offset)}


def turn(i, thread="t1", offset=dt.timedelta(0), user="u1", **extra):
    return {"user_id": user, "prompt": f"prompt {i}", "generation": f"answer {i}", "properties": {},
            "timestamp": at(offset), "latency": 1.0, "thread_id": thread, "prompt_event_name": "Prompt",
            "generation_event_name": "Generation", "assistant_id": None, **extra}


@pytest.fixture
def store(db_url):
    store = Store(db_url)  # each engine (conftest)
    yield store
    store.close()


def partition(store, timeout_s=1800):
    """{session_id: sorted event names}."""
    groups: dict[str, list[str]] = {}
    for e in store.events(limit=None, session_timeout_s=timeout_s):
        groups.setdefault(e["session_id"], []).append(e["event"])
    return {k: sorted(v) for k, v in groups.items()}


def reference(events, timeout):
    """The Trubrics rule, written plainly: per user, a gap of more than ``timeout`` splits."""
    sessions = []
    by_user: dict[str, list] = {}
    for e in events:
        by_user.setdefault(e["user_id"], []).append(e)
    for user_events in by_user.values():
        user_events.sort(key=lambda e: e["timestamp"])
        current, last = [], None
        for e in user_events:
            moment = dt.datetime.fromisoformat(e["timestamp"])
            if last is not None and moment - last > timeout:
                sessions.append(sorted(x["event"] for x in current))
                current = []
            current.append(e)
            last = moment
        sessions.append(sorted(x["event"] for x in current))
    return sorted(sessions)


# --- sessions ----------------------------------------------------------------------------------


def test_exactly_thirty_minutes_stays_in_the_session(store):
    store.insert([
        ev("a", offset=0 * MINUTE),
        ev("b", offset=30 * MINUTE),                                        # gap == 30 min: same
        ev("c", offset=60 * MINUTE + dt.timedelta(microseconds=1)),         # gap 30 min + 1 µs: new
    ])
    assert sorted(partition(store).values()) == [["a", "b"], ["c"]]
    [later, first] = store.sessions()
    assert (first["events"], first["start"], first["end"]) == (2, at(0 * MINUTE), at(30 * MINUTE))
    assert first["duration_s"] == 1800
    assert later["events"] == 1


def test_timeout_is_configurable(store):
    store.insert([ev("a"), ev("b", offset=11 * MINUTE), ev("c", offset=20 * MINUTE)])
    assert sorted(partition(store, timeout_s=600).values()) == [["a"], ["b", "c"]]
    assert sorted(partition(store).values()) == [["a", "b", "c"]]


def test_sessions_are_per_user(store):
    store.insert([ev("a1", "alice"), ev("b1", "bob", 20 * MINUTE), ev("a2", "alice", 40 * MINUTE)])
    assert sorted(partition(store).values()) == [["a1"], ["a2"], ["b1"]]


def test_llm_events_count_as_activity(store):
    store.insert([ev("open")], [turn(1, offset=25 * MINUTE)])
    store.insert([ev("close", offset=50 * MINUTE)])
    [session] = store.sessions()
    assert (session["events"], session["llm_events"], session["threads"]) == (3, 1, 1)


def test_out_of_order_inserts_give_the_same_sessions(tmp_path):
    rng = random.Random(7)
    events = [ev(f"e{i}", offset=i * 7 * MINUTE) for i in range(40)]  # gaps of 7 min...
    events += [ev(f"late{i}", offset=(300 + i * 45) * MINUTE) for i in range(5)]  # ...and of 45
    in_order = Store(tmp_path / "in-order.sqlite3")
    in_order.insert(events)
    shuffled = Store(tmp_path / "shuffled.sqlite3")
    mixed = events[:]
    rng.shuffle(mixed)
    for start in range(0, len(mixed), 6):  # arrives in many small, unordered batches
        shuffled.insert(mixed[start:start + 6])
    assert partition(shuffled) == partition(in_order)  # same groups, same session ids
    assert sorted(partition(in_order).values()) == reference(events, 30 * MINUTE)


def test_appended_events_never_change_existing_session_ids(store):
    store.insert([ev("a"), ev("b", offset=10 * MINUTE)])
    [before] = store.sessions()
    store.insert([ev("c", offset=35 * MINUTE)])                   # extends the session
    store.insert([ev("d", offset=120 * MINUTE)])                  # starts a new one
    sessions = {s["session_id"]: s for s in store.sessions()}
    assert sessions[before["session_id"]]["events"] == 3
    assert len(sessions) == 2


def test_a_late_event_can_bridge_two_sessions(store):
    store.insert([ev("a"), ev("b", offset=50 * MINUTE)])
    assert len(store.sessions()) == 2
    store.insert([ev("bridge", offset=25 * MINUTE)])  # arrives last, belongs in the gap
    [session] = store.sessions()
    assert session["events"] == 3


def test_many_users_match_the_reference(store):
    rng = random.Random(11)
    events = []
    for u in range(60):
        moment = dt.timedelta(minutes=rng.randint(0, 600))
        for i in range(rng.randint(1, 30)):
            moment += dt.timedelta(seconds=rng.choice([5, 60, 600, 1799, 1800, 1801, 3600, 7200]))
            events.append(ev(f"u{u}-{i}", f"user-{u}", moment))
    rng.shuffle(events)
    for start in range(0, len(events), 100):
        store.insert(events[start:start + 100])
    assert sorted(partition(store).values()) == reference(events, 30 * MINUTE)
    assert sum(s["events"] for s in store.sessions(limit=None)) == len(events)
    assert {s["user_id"] for s in store.sessions(user="user-3", limit=None)} == {"user-3"}


def test_sessions_through_the_server(db_url):
    with LocalServer(db_url, session_timeout_s=300) as server:
        requests.post(f"{server.url}/publish_events", headers={"x-api-key": "k"},
                      json=[ev("a"), ev("b", offset=4 * MINUTE), ev("c", offset=10 * MINUTE)]).raise_for_status()
        sessions = requests.get(f"{server.url}/api/sessions").json()
        assert [s["events"] for s in sessions] == [1, 2]  # newest first; 5-minute timeout
        events = requests.get(f"{server.url}/api/events", params={"user": "u1"}).json()
        assert len({e["session_id"] for e in events}) == 2


# --- threads ----------------------------------------------------------------------------------------


def test_thread_is_ordered_by_time_then_arrival(store):
    store.insert((), [turn(3, offset=3 * MINUTE), turn(1, offset=1 * MINUTE)])
    store.insert((), [turn(2, offset=2 * MINUTE), turn(0, offset=0 * MINUTE)])
    store.insert((), [turn("2b", offset=2 * MINUTE)])  # same timestamp as turn 2: after it
    assert [t["prompt"] for t in store.thread("t1")] == [
        "prompt 0", "prompt 1", "prompt 2", "prompt 2b", "prompt 3"]


def test_threads_are_separate_and_listed_newest_first(store):
    store.insert([ev("Thumbs up", offset=9 * MINUTE, **{"$thread_id": "t1"})], [
        turn(1, "t1", 1 * MINUTE, properties={"model": "gpt-4o", "input_tokens": 5, "output_tokens": 7}),
        turn(1, "t2", 2 * MINUTE, user="bob"),
        turn(2, "t1", 3 * MINUTE, properties={"error.type": "RateLimitError"}, generation=""),
        turn(9, None, 4 * MINUTE),  # no thread: an LLM event, in no thread
    ])
    threads = store.threads()
    assert [t["thread_id"] for t in threads] == ["t1", "t2"]  # t1's last turn is the latest
    t1 = threads[0]
    assert (t1["turns"], t1["title"], t1["errors"], t1["users"]) == (2, "prompt 1", 1, ["u1"])
    assert (t1["input_tokens"], t1["output_tokens"], t1["models"]) == (5, 7, ["gpt-4o"])
    assert [t["prompt"] for t in store.thread("t1")] == ["prompt 1", "prompt 2"]  # not the thumbs up
    assert store.threads(user="bob")[0]["thread_id"] == "t2"
    assert store.thread("nope") == []
    assert [e["event"] for e in store.events(thread="t1", newest_first=False)] == [
        "Generation", "Generation", "Thumbs up"]


def test_thread_api_and_page_served(db_url):
    with LocalServer(db_url) as server:
        requests.post(f"{server.url}/publish_llm_events", headers={"x-api-key": "k"},
                      json=[turn(1, "a/b c"), turn(2, "a/b c", MINUTE)]).raise_for_status()
        response = requests.get(f"{server.url}/api/threads/a%2Fb%20c")
        assert [t["prompt"] for t in response.json()["turns"]] == ["prompt 1", "prompt 2"]
        assert requests.get(f"{server.url}/api/threads/missing").status_code == 404
        page = requests.get(server.url + "/")
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "/api/threads" in page.text
        assert requests.get(f"{server.url}/api/events", params={"limit": "x"}).status_code == 400


def test_a_thread_whose_first_turn_failed_before_a_prompt_is_titled_by_its_first_prompt(db_url, capsys):
    failed = turn(0, "t-fail", error="InternalServerError: HTTP 500", prompt="", generation="")
    with LocalServer(db_url) as server:
        for batch in ([failed, turn(1, "t-fail", MINUTE)], [turn(2, "t-ok", 2 * MINUTE)]):
            requests.post(f"{server.url}/publish_llm_events", headers={"x-api-key": "k"},
                          json=batch).raise_for_status()
        titles = {t["thread_id"]: t["title"] for t in requests.get(f"{server.url}/api/threads").json()}
        assert titles == {"t-fail": "prompt 1", "t-ok": "prompt 2"}
        assert requests.get(f"{server.url}/api/threads/t-fail").json()["title"] == "prompt 1"
        listed = requests.get(f"{server.url}/api/conversation_list", params={"since": "2026-01-01"}).json()
        assert {t["thread_id"]: t["title"] for t in listed["threads"]} == titles
        newest = requests.get(f"{server.url}/api/conversation_list", params={"limit": "1"}).json()["threads"]
        assert [t["thread_id"] for t in newest] == ["t-ok"]  # ?limit= is honoured, newest first
        assert main(["threads", "--url", server.url]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("t-fail"))
    assert row.endswith("prompt 1")
