"""The tables the analyses read, kept current by the store's fold of new events.

::

    for statement in STATEMENTS:          # engine-neutral DDL (TEXT, BIGINT, DOUBLE PRECISION, INTEGER)
        db.execute(statement)
    apply(db, after_id)                   # inside the store's fold: the rows id > after_id
    set_feedback_events(db, {"Thumbs up": 1.0, "Thumbs down": 0.0})

The module itself is the store's hook (``store.Hook``: :func:`ensure` once, :func:`apply` in
each fold: both engines' bulk fold, before any read), registered by
``trubrics_otel.server`` for every ``Store``, so the analytics tables commit with the derived
tables, every read sees them current, and the store knows nothing of them.

Why: at a million events, counting distinct users per week or summing every thread from the
raw table takes seconds; these tables hold what the analyses group, updated from the rows
each fold takes in (SQL ``INSERT … SELECT … ON CONFLICT``, plus Python for the feedback rows only).

======================  =====================================================================
``analytics_activity``  (period, start, user): who was active in each day, week and month
``analytics_daily``     (day, user, event name, model): the same, filterable by event or model
                        (an LLM event under its generation and its prompt name)
``analytics_first``     each user's first event (cohorts, new users)
``analytics_latency``   (day, model, event name, latency bin): LLM latencies per day, the log
                        bins (count and sum) of the store's hourly ``latency_hist`` (``stats``
                        by day or week)
``analytics_feedback``  one row per feedback (:mod:`.feedback` says what counts), its value,
                        sentiment, and the thread / LLM turn it refers to
``analytics_feedback_names``  event names counted as feedback with a value (``serve
                        --feedback-event "Thumbs up=1"``), kept so readers agree with the server
``analytics_topics``, ``analytics_prompts``: the prompt topics (:mod:`.topics`), filled lazily
``analytics_steps``     (name, user, time, id, model) of every event under each name a funnel step
                        matches (an LLM event under its generation and its prompt name); made
                        and filled for older stores by the store's migration ``funnel_steps``
======================  =====================================================================

Threads (turns, span, cost, errors, time to first token, last turn) are the store's ``threads``
table (:mod:`trubrics_otel.server.store.threads`), which the thread list reads too.
"""

from __future__ import annotations

from collections.abc import Mapping

from trubrics_otel.server.analytics import feedback_rows
from trubrics_otel.server.store.derived import LATENCY_BIN
from trubrics_otel.server.store.dialect import Writer

STATEMENTS = (
    """CREATE TABLE IF NOT EXISTS analytics_activity (
        period TEXT NOT NULL, start_us BIGINT NOT NULL, user_id TEXT NOT NULL,
        PRIMARY KEY (period, start_us, user_id))""",
    """CREATE TABLE IF NOT EXISTS analytics_daily (
        day_us BIGINT NOT NULL, user_id TEXT NOT NULL, event TEXT NOT NULL, model TEXT NOT NULL,
        PRIMARY KEY (day_us, user_id, event, model))""",
    # the day before the user: a batch's rows land at the end of each name's (and model's) range,
    # on a few pages (user first, on a page per user: ~2.4 WAL pages per LLM event at 10,000
    # users); the store's migration ``summary_merge`` dropped the user-first ones
    "CREATE INDEX IF NOT EXISTS analytics_daily_event ON analytics_daily (event, day_us, user_id)",
    "CREATE INDEX IF NOT EXISTS analytics_daily_model ON analytics_daily (model, day_us, user_id)",
    """CREATE TABLE IF NOT EXISTS analytics_first (
        user_id TEXT PRIMARY KEY, first_us BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS analytics_first_time ON analytics_first (first_us)",
    """CREATE TABLE IF NOT EXISTS analytics_latency (
        day_us BIGINT NOT NULL, model TEXT NOT NULL, event TEXT NOT NULL, bin INTEGER NOT NULL,
        n BIGINT NOT NULL, total DOUBLE PRECISION NOT NULL, PRIMARY KEY (day_us, model, event, bin))""",
    """CREATE TABLE IF NOT EXISTS analytics_feedback (
        event_id BIGINT PRIMARY KEY, ts_us BIGINT NOT NULL, user_id TEXT NOT NULL, event TEXT NOT NULL,
        source TEXT NOT NULL, name TEXT, value DOUBLE PRECISION, label TEXT, sentiment INTEGER NOT NULL,
        thread_id TEXT, ref_trace TEXT, ref_span TEXT, turn_id BIGINT, link TEXT,
        model TEXT, assistant_id TEXT)""",
    "CREATE INDEX IF NOT EXISTS analytics_feedback_time ON analytics_feedback (ts_us)",
    "CREATE INDEX IF NOT EXISTS analytics_feedback_thread ON analytics_feedback (thread_id)",
    "CREATE INDEX IF NOT EXISTS analytics_feedback_ref ON analytics_feedback (ref_trace, ref_span)",
    "CREATE INDEX IF NOT EXISTS analytics_feedback_turn ON analytics_feedback (turn_id, sentiment)",
    """CREATE TABLE IF NOT EXISTS analytics_feedback_names (
        event TEXT PRIMARY KEY, value DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS analytics_topics (
        topic INTEGER PRIMARY KEY, label TEXT NOT NULL, terms TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS analytics_prompts (
        event_id BIGINT PRIMARY KEY, topic INTEGER NOT NULL, rephrase INTEGER NOT NULL,
        retry INTEGER NOT NULL, user_id TEXT NOT NULL, ts_us BIGINT NOT NULL, model TEXT,
        failed INTEGER NOT NULL)""",
    # covering: the topics table is read from this index alone
    """CREATE INDEX IF NOT EXISTS analytics_prompts_cover ON analytics_prompts
        (topic, user_id, failed, rephrase, retry, ts_us, model)""",
    """CREATE TABLE IF NOT EXISTS analytics_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
)

TABLES = ("analytics_activity", "analytics_daily", "analytics_first", "analytics_latency", "analytics_feedback",
          "analytics_topics", "analytics_prompts", "analytics_meta")
"""Derived from ``events`` alone: emptied and refilled by :func:`rebuild`."""


def _activity(db: Writer) -> list[str]:
    """The batch's (day, user) pairs, once; their weeks and months from them (a statement per
    period, each grouping every new event again, cost SQLite 2.6x the CPU)."""
    d = db.dialect
    return [f"""WITH days AS (SELECT DISTINCT {d.bucket_us("day", "ts_us")} AS day_us, user_id
                              FROM {d.new_rows()} WHERE id > ?)
                INSERT INTO analytics_activity (period, start_us, user_id)
                SELECT 'day', day_us, user_id FROM days
                UNION SELECT 'week', {d.bucket_us("week", "day_us")}, user_id FROM days
                UNION SELECT 'month', {d.bucket_us("month", "day_us")}, user_id FROM days WHERE true
                ON CONFLICT DO NOTHING"""]


def _daily(db: Writer) -> list[str]:
    day = db.dialect.bucket_us("day", "ts_us")
    return [f"""INSERT INTO analytics_daily (day_us, user_id, event, model)
                SELECT DISTINCT {day}, user_id, {name}, COALESCE(model, '') FROM {db.dialect.new_rows()}
                WHERE id > ?{extra} ON CONFLICT DO NOTHING"""
            for name, extra in (("event", ""), ("prompt_event_name", " AND kind = 'llm'"))]


def _first(db: Writer) -> str:
    """Only an earlier first event rewrites a user's row: an unconditional SET rewrote every
    user of every batch and their ``first_us`` index entries, unchanged (~80 WAL pages per
    batch of 100 LLM events at 10,000 users)."""
    return f"""INSERT INTO analytics_first (user_id, first_us)
               SELECT user_id, MIN(ts_us) FROM {db.dialect.new_rows()} WHERE id > ? GROUP BY user_id
               ON CONFLICT (user_id) DO UPDATE SET first_us = excluded.first_us
               WHERE excluded.first_us < analytics_first.first_us"""


def _latency(db: Writer) -> str:
    return f"""INSERT INTO analytics_latency (day_us, model, event, bin, n, total)
               SELECT {db.dialect.bucket_us("day", "ts_us")}, COALESCE(model, ''), event, {LATENCY_BIN},
                      COUNT(*), SUM(latency)
               FROM {db.dialect.new_rows()} WHERE id > ? AND kind = 'llm' AND latency IS NOT NULL
               GROUP BY 1, 2, 3, 4
               ON CONFLICT (day_us, model, event, bin) DO UPDATE SET n = analytics_latency.n + excluded.n,
                   total = analytics_latency.total + excluded.total"""


def _steps(db: Writer, own: bool = False) -> list[str]:
    """The funnels' look-up table (:mod:`.funnels`); its DDL is in the store's migrations.
    ``own``: the rows are a batch's own, just inserted (PostgreSQL's insert transaction): none
    is in the table yet, so plain INSERTs, an LLM event under its prompt's name only where that
    differs from its own name: ``ON CONFLICT``'s speculative insertion nearly doubled their cost
    (PostgreSQL's CPU per LLM event ~8 µs, now ~5; per ``track`` event ~4, now ~2.3). Kept where
    a fold or a rebuild may meet rows already there."""
    conflict = "" if own else " ON CONFLICT DO NOTHING"
    return [f"""INSERT INTO analytics_steps (event, user_id, ts_us, id, model)
                SELECT {name}, user_id, ts_us, id, model FROM {db.dialect.new_rows()} WHERE id > ?{extra}{conflict}"""
            for name, extra in (("event", ""), ("prompt_event_name", " AND kind = 'llm' AND prompt_event_name <> event"))]


def create(db: Writer) -> None:
    for statement in STATEMENTS:
        db.execute(statement)


def apply(db: Writer, after_id: int, side_by_side: bool = True) -> None:
    """Fold the events with ``id > after_id`` into the analytics tables (caller's transaction);
    ``side_by_side=False``: but for :func:`apply_side_by_side`'s tables (run already)."""
    for statement in (*_activity(db), *_daily(db), _first(db), _latency(db)):
        db.execute(statement, (after_id,) * statement.count("?"))
    if side_by_side:
        for statement in _steps(db):
            db.execute(statement, (after_id,))
    feedback_rows.apply(db, after_id)


def apply_side_by_side(db: Writer, after_id: int) -> None:
    """The tables whose rows are the batch's alone (keyed by event id: no other batch writes
    or reads them while folding), which PostgreSQL fills in the batch's own transaction, beside
    other workers' batches, not in its fold; each of them new (:func:`_steps`)."""
    for statement in _steps(db, own=True):
        db.execute(statement, (after_id,))


def rebuild(db: Writer) -> None:
    """Empty the derived tables and fold every event in again (a new or upgraded database)."""
    for table in TABLES:
        db.execute(f"DELETE FROM {table}")
    apply(db, 0)


def set_feedback_events(db: Writer, values: Mapping[str, float]) -> None:
    """Count events with these names as feedback with these values (``serve
    --feedback-event``), including those already stored."""
    for name, value in values.items():
        db.execute("DELETE FROM analytics_feedback_names WHERE event = ?", (name,))
        db.execute("INSERT INTO analytics_feedback_names (event, value) VALUES (?, ?)", (name, float(value)))
        db.execute("DELETE FROM analytics_feedback WHERE event = ? AND source = 'mapping'", (name,))
    feedback_rows.apply(db, 0, names=list(values))


VERSION = "8"


def ensure(db: Writer) -> bool:
    """Create the tables; fill them from ``events`` when new or built by another version (then
    True: every stored event is in them, the store's next fold leaves them alone)."""
    create(db)
    if db.rows("SELECT value FROM analytics_meta WHERE key = 'version'") != [(VERSION,)]:
        for table in TABLES:  # another version's shape: made again (the feedback names are kept)
            db.execute(f"DROP TABLE IF EXISTS {table}")
        create(db)
        rebuild(db)
        db.execute("DELETE FROM analytics_meta WHERE key = 'version'")
        db.execute("INSERT INTO analytics_meta (key, value) VALUES ('version', ?)", (VERSION,))
        return True
    return False
