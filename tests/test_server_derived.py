"""The tables kept on insert (sessions, users, threads, rollups, search) against a rebuild."""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3

from trubrics_otel.server import Store

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)
TABLES = ("sessions", "users", "threads", "rollup", "hourly", "latency_hist")


def random_events(seed: int = 3) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    plain, llm = [], []
    for i in range(400):
        moment = (T0 + dt.timedelta(minutes=rng.randrange(3000))).isoformat()
        user, thread = f"u{rng.randrange(8)}", f"t{rng.randrange(12)}"
        ids = {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}"}
        if rng.random() < 0.6:
            props = {**ids, "model": rng.choice(("a", "b")), "input_tokens": rng.randrange(99),
                     "cost_usd": rng.choice((None, 0.25, 0.5))}
            llm.append({"user_id": user, "prompt": f"word{i} shared", "generation": "g", "thread_id": thread,
                        "timestamp": moment, "latency": rng.choice((0.1, 1.0, 2.5)),
                        "properties": {k: v for k, v in props.items() if v is not None}})
        else:
            plain.append({"user_id": user, "event": rng.choice(("View", "Thumbs up")), "timestamp": moment,
                          "properties": {**ids, **({"$thread_id": thread} if rng.random() < 0.3 else {})}})
    return plain, llm


def dump(store: Store) -> dict[str, list]:
    """Every derived row, without row ids (they depend on arrival order), floats rounded."""
    tables = {}
    with store.connection() as c:
        for table in TABLES:
            described = c.execute(f"SELECT * FROM {table} LIMIT 0").description  # either engine
            columns = [d[0] for d in described if d[0] not in ("first_id", "last_id")]
            rows = c.execute(f"SELECT {', '.join(columns)} FROM {table}")
            tables[table] = sorted(tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in rows)
    return tables


def test_shuffled_retried_batches_give_the_tables_of_one_ordered_batch(tmp_path, db_url):
    """On each engine: the derived tables of late, retried, overlapping batches are those of
    one ordered batch on SQLite."""
    plain, llm = random_events()
    ordered = Store(tmp_path / "ordered.sqlite3")
    ordered.insert(plain, llm)
    shuffled = Store(db_url)
    items = [("e", e) for e in plain] + [("l", e) for e in llm]
    random.Random(9).shuffle(items)
    for start in range(0, len(items), 7):
        batch = items[start:start + 7] + items[max(0, start - 3):start]  # retries overlap
        shuffled.insert([e for k, e in batch if k == "e"], [e for k, e in batch if k == "l"])
        if start % 3 == 0:  # SQLite: folds ranges of one to three batches (a read folds first)
            shuffled.count()
    assert dump(shuffled) == dump(ordered)
    assert sum(row[4] for row in dump(ordered)["sessions"]) == len(items)
    shuffled.close()


def test_tables_match_a_rebuild_from_the_events(tmp_path):
    store = Store(tmp_path / "e.sqlite3")
    plain, llm = random_events(seed=4)
    for start in range(0, 400, 50):
        store.insert(plain[start:start + 50], llm[start:start + 50])
    before = dump(store)
    with sqlite3.connect(store.path) as c:
        c.execute("PRAGMA user_version = 0")  # as if written by an older version
    assert dump(Store(store.path)) == before
    with store.connection() as c:
        c.dialect.text_index_current(c)  # as a search does first
        hits = c.execute("SELECT rowid FROM events_fts WHERE events_fts MATCH 'word7'").fetchall()
    assert [e["prompt"] for e in store.events(limit=None) if e["id"] in {h[0] for h in hits}] == ["word7 shared"]


def test_a_database_from_before_the_derived_tables_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as c:  # the first release's schema: no cost_usd, no derived tables
        c.execute("""CREATE TABLE events (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, user_id TEXT NOT NULL,
            event TEXT NOT NULL, ts_us INTEGER NOT NULL, received_us INTEGER NOT NULL, properties TEXT NOT NULL,
            trace_id TEXT, span_id TEXT, thread_id TEXT, prompt TEXT, generation TEXT, prompt_event_name TEXT,
            assistant_id TEXT, model TEXT, latency REAL, input_tokens INTEGER, output_tokens INTEGER, error TEXT)""")
        c.execute("INSERT INTO events (kind, user_id, event, ts_us, received_us, properties, thread_id, prompt, "
                  "generation, prompt_event_name, model, latency, input_tokens) VALUES "
                  "('llm', 'ann', 'Generation', 1772355600000000, 1772355600000000, ?, 't1', 'hi', 'hello', "
                  "'Prompt', 'gpt-4o', 1.0, 7)", (json.dumps({"cost_usd": 0.5}),))
    store = Store(path)
    [user] = store.users()
    assert (user["user_id"], user["llm_events"], user["input_tokens"], user["cost_usd"]) == ("ann", 1, 7, 0.5)
    assert store.threads()[0]["title"] == "hi" and store.sessions()[0]["events"] == 1
    store.insert([{"user_id": "ann", "event": "Thumbs up", "timestamp": "2026-03-01T09:01:00+00:00",
                   "properties": {"$thread_id": "t1", "$feedback": True}}])
    assert store.threads()[0]["feedback"] == {"Thumbs up": 1} and store.sessions()[0]["events"] == 2


def test_readers_use_the_servers_session_table_and_leave_it_alone(tmp_path):
    def ev(name: str, minutes: int) -> dict:
        return {"user_id": "u", "event": name, "timestamp": (T0 + dt.timedelta(minutes=minutes)).isoformat()}

    server = Store(tmp_path / "e.sqlite3", session_timeout_s=300)  # serve --session-timeout 5
    server.insert([ev("a", 0), ev("b", 4), ev("c", 10)])
    reader = Store(server.path)  # the CLI: no timeout of its own
    assert [s["events"] for s in reader.sessions()] == [1, 2]
    assert [s["events"] for s in reader.sessions(timeout_s=1800)] == [3]  # computed, not stored
    server.insert([ev("d", 14)])
    assert [s["events"] for s in Store(server.path).sessions()] == [2, 2]


def test_every_derived_update_reads_only_the_batchs_new_rows(tmp_path):
    """Each insert folds its batch into the derived tables: a statement that walked an index
    (a whole thread, every user) instead of the rowid range ``id > ?`` made ingest slow down as
    a thread grew (1,644 LLM events/s at 20,000 turns). The plan must be the range alone."""
    import sqlite3

    from trubrics_otel.server import Store
    from trubrics_otel.server.store import derived
    from trubrics_otel.server.store.dialect import SQLITE

    store = Store(tmp_path / "events.sqlite3")
    store.count()
    connection = sqlite3.connect(store.path)
    derived.register_functions(connection)
    for statement in derived.updates(SQLITE):
        query = statement[statement.index("SELECT"):].split("ON CONFLICT")[0]
        plan = [row[3] for row in connection.execute("EXPLAIN QUERY PLAN " + query, (0,) * query.count("?"))]
        # the batch's rows: the events table read by its primary key (a grouping of them is
        # read as the subquery's own rows, "SCAN g", "SEARCH m USING AUTOMATIC ...": no index walk;
        # a thread's turns at one instant after the batch's start: a seek in its look-up's primary
        # key, whatever the thread's length)
        reads = [step for step in plan if step.startswith(("SCAN", "SEARCH"))
                 and not step.startswith(("SCAN g", "SEARCH m USING AUTOMATIC", "SCAN (subquery"))]
        assert reads and all("PRIMARY KEY" in step for step in reads), (query, plan)


def test_one_large_transaction_costs_per_event_what_a_small_one_does(tmp_path, monkeypatch):
    """Issue 30: a fold that scanned the whole batch once per thread made a 100k-event
    transaction quadratic. Counted in SQLite VM steps (not seconds): the per-event work of one
    20,000-event transaction stays within 2x that of a 1,000-event one, its fold included."""
    from trubrics_otel.server.store.sqlite import SQLiteEngine

    steps = [0]
    connect = SQLiteEngine._connect

    def counting(self):
        connection = connect(self)
        connection.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 1000)
        return connection
    monkeypatch.setattr(SQLiteEngine, "_connect", counting)

    def per_event(n: int) -> float:
        llm = [{"user_id": f"u{i % 50}", "prompt": f"p{i}", "generation": "g", "thread_id": f"t{i % (n // 4)}",
                "timestamp": (T0 + dt.timedelta(seconds=i)).isoformat(), "latency": 1.0,
                "properties": {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}", "model": "m"}} for i in range(n)]
        store = Store(tmp_path / f"{n}.sqlite3")
        store.count()
        steps[0] = 0
        store.insert((), llm)
        store.engine.fold()
        assert store.count()["llm_events"] == n
        return steps[0] / n

    small, large = per_event(1_000), per_event(20_000)
    assert large < 2 * small, (small, large)


def test_a_threads_turns_at_one_moment_are_ordered_by_arrival(db_url):
    """Turns of a thread stored with the same timestamp: the first stored is the thread's first
    turn (its title, in the thread list and the conversations) and the last stored its last
    (failed: the conversation counts as abandoned), whichever batches they came in."""
    from trubrics_otel.server.analytics.api import answer

    def turn(i: int, prompt: str, failed: bool = False) -> dict:
        props = {"$trace_id": f"{i:032x}", "$span_id": f"{i:016x}", **({"error.type": "Timeout"} if failed else {})}
        return {"user_id": "u", "prompt": prompt, "generation": "g", "thread_id": "t",
                "timestamp": T0.isoformat(), "properties": props}

    store = Store(db_url)
    store.insert((), [turn(1, "first"), turn(2, "second")])
    store.insert((), [turn(3, "third"), turn(4, "last", failed=True)])
    [thread] = store.threads()
    assert (thread["title"], thread["turns"]) == ("first", 4)
    [conversation] = answer(store, "conversation_list", {})["threads"]
    assert (conversation["title"], conversation["turns"], conversation["abandoned"]) == ("first", 4, True)
    store.close()


def test_folded_tables_are_those_rebuilt_from_the_events(tmp_path):
    """SQLite folds the pending events from a narrow copy of theirs (``store.sqlite_fold``);
    every summary and analytics table must hold what a rebuild from ``events`` itself gives:
    late turns, errors, costs, times to first token of every shape (seconds as text, nonsense,
    negative), feedback, product events, folded in chunks of any size."""
    from analytics_data import generate
    from trubrics_otel.server.analytics.schema import TABLES
    from trubrics_otel.server.store import derived

    plain, llm = generate(users=25)
    rng = random.Random(11)
    for turn in llm:
        if rng.random() < 0.3:  # besides generate's numbers
            turn["properties"]["time_to_first_token"] = rng.choice(("0.25", "fast", -1, True, 7))
    items = [(False, e) for e in plain] + [(True, e) for e in llm]
    rng.shuffle(items)
    store = Store(tmp_path / "e.sqlite3")
    for i, size in enumerate(range(0, len(items), 41)):
        part = items[size:size + 41]
        store.insert([e for is_llm, e in part if not is_llm], [e for is_llm, e in part if is_llm])
        if i % 3 == 0:
            store.count()  # a read folds what is pending: chunks of one to three batches

    skipped = ("analytics_meta", "analytics_topics", "analytics_prompts")  # topics: fitted lazily
    tables = (*derived._DERIVED, *(t for t in TABLES if t not in skipped), "analytics_steps")

    def every_table() -> dict[str, list[str]]:
        with store.reader() as db:
            return {t: sorted(repr([round(v, 6) if isinstance(v, float) else v for v in row])
                              for row in db.rows(f"SELECT * FROM {t}")) for t in tables}

    folded = every_table()
    with store.reader() as db:
        turns, ttft_turns, errors = db.rows("SELECT SUM(turns), SUM(ttft_turns), SUM(errors) FROM threads")[0]
    assert turns == len(llm) and 0 < ttft_turns < turns and errors > 0
    store.close()
    with sqlite3.connect(store.path) as c:  # as if written by older versions: every table rebuilt
        c.execute("PRAGMA user_version = 0")
        c.execute("DELETE FROM analytics_meta WHERE key = 'version'")
        c.execute("DELETE FROM analytics_steps")
        c.execute("INSERT OR IGNORE INTO analytics_steps SELECT event, user_id, ts_us, id, model FROM events "
                  "UNION ALL SELECT prompt_event_name, user_id, ts_us, id, model FROM events "
                  "WHERE kind = 'llm' AND prompt_event_name IS NOT NULL")
    assert every_table() == folded
