"""The tables the analyses read, kept current from each batch of new events.

::

    for statement in STATEMENTS:          # engine-neutral DDL (TEXT, BIGINT, DOUBLE PRECISION, INTEGER)
        db.execute(statement)
    apply(db, after_id)                   # inside the store's fold: the rows id > after_id
    set_feedback_events(db, {"Thumbs up": 1.0, "Thumbs down": 0.0})

The module itself is the store's hook (``store.Hook``: :func:`ensure` once, :func:`apply` in
each fold: PostgreSQL's insert transaction, SQLite's bulk fold before any read), registered by
``trubrics_otel.server`` for every ``Store``, so the analytics tables commit with the derived
tables, every read sees them current, and the store knows nothing of them.

Why: at a million events, counting distinct users per week or summing every thread from the
raw table takes seconds; these tables hold what the analyses group, updated from the few rows
a batch adds (SQL ``INSERT … SELECT … ON CONFLICT``, plus Python for the feedback rows only).

======================  =====================================================================
``analytics_activity``  (period, start, user): who was active in each day, week and month
``analytics_daily``     (day, user, event name, model): the same, filterable by event or model
                        (an LLM event under its generation and its prompt name)
``analytics_first``     each user's first event (cohorts, new users)
``analytics_latency``   (day, model, event name, latency bin): LLM latencies per day, the log
                        bins of the store's hourly ``latency_hist`` (``stats`` by day or week)
``analytics_threads``   per thread: turns, span, cost, errors, time to first token, last turn
``analytics_feedback``  one row per feedback (:mod:`.feedback` says what counts), its value,
                        sentiment, and the thread / LLM turn it refers to
``analytics_feedback_names``  event names counted as feedback with a value (``serve
                        --feedback-event "Thumbs up=1"``), kept so readers agree with the server
``analytics_topics``, ``analytics_prompts``: the prompt topics (:mod:`.topics`), filled lazily
``analytics_steps``     (name, user, time, id, model) of every event under each name a funnel step
                        matches (an LLM event under its generation and its prompt name); made
                        and filled for older stores by the store's migration ``funnel_steps``
======================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Mapping

from trubrics_otel.server.analytics import feedback_rows
from trubrics_otel.server.store.derived import LATENCY_BINS_PER_E, NO_LATENCY_BIN
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
        n BIGINT NOT NULL, PRIMARY KEY (day_us, model, event, bin))""",
    """CREATE TABLE IF NOT EXISTS analytics_threads (
        thread_id TEXT PRIMARY KEY, user_id TEXT, model TEXT, turns INTEGER NOT NULL,
        start_us BIGINT NOT NULL, end_us BIGINT NOT NULL, first_us BIGINT NOT NULL,
        first_id BIGINT NOT NULL, last_us BIGINT NOT NULL, last_id BIGINT NOT NULL,
        last_error INTEGER NOT NULL, errors INTEGER NOT NULL, cost_usd DOUBLE PRECISION NOT NULL,
        cost_turns INTEGER NOT NULL, ttft_s DOUBLE PRECISION NOT NULL, ttft_turns INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS analytics_threads_start ON analytics_threads (start_us)",
    "CREATE INDEX IF NOT EXISTS analytics_threads_user ON analytics_threads (user_id, start_us)",
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

TABLES = ("analytics_activity", "analytics_daily", "analytics_first", "analytics_latency", "analytics_threads", "analytics_feedback",
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
    return f"""INSERT INTO analytics_latency (day_us, model, event, bin, n)
               SELECT {db.dialect.bucket_us("day", "ts_us")}, COALESCE(model, ''), event,
                      CASE WHEN latency > 0 THEN CAST(round(ln(latency) * {LATENCY_BINS_PER_E}) AS INTEGER)
                           ELSE {NO_LATENCY_BIN} END, COUNT(*)
               FROM {db.dialect.new_rows()} WHERE id > ? AND kind = 'llm' AND latency IS NOT NULL
               GROUP BY 1, 2, 3, 4
               ON CONFLICT (day_us, model, event, bin) DO UPDATE SET n = analytics_latency.n + excluded.n"""


def _threads(db: Writer) -> list[str]:
    """Fold a batch's LLM turns into their threads: sums add, the first and last turn (by time,
    then id) win by comparison, so a late turn lands right. The batch's first and last turn of
    each thread: on SQLite, its earliest and latest time, then the lowest and highest id at
    those times (two groupings of a fold's thousands of turns; window functions ranking every
    turn cost SQLite twice the CPU: a sort of every turn, with all its columns, per ranking),
    their rows read by id; on PostgreSQL (a batch of ~100), ranked by window functions.

    Two upserts of the same batch: the first adds new threads and folds turns into threads
    whose first turn stays (it leaves ``user_id`` and ``start_us`` unassigned: SQLite rewrites
    the index entries of every column a SET assigns, even to its own value, ~130 WAL pages per
    batch of 100 LLM events at 20,000 threads); the second, only for the threads it skipped
    (an earlier first turn arrived), assigns every column. It must run second: the threads the
    first one added or folded no longer have an earlier first turn in the batch, so it reads
    only the turns of threads with one (aggregating every thread of a large batch again
    doubled the pair's cost: SQLite folds thousands of events at once)."""
    d = db.dialect
    t = "analytics_threads"
    earlier = f"(excluded.first_us, excluded.first_id) < ({t}.first_us, {t}.first_id)"
    later = f"(excluded.last_us, excluded.last_id) > ({t}.last_us, {t}.last_id)"

    def first(column: str) -> str:
        return f"MAX(CASE WHEN b.rf = 1 THEN b.{column} END)"

    def last(column: str) -> str:
        return f"MAX(CASE WHEN b.rl = 1 THEN b.{column} END)"

    def when(condition: str, column: str) -> str:
        return f"{column} = CASE WHEN {condition} THEN excluded.{column} ELSE {t}.{column} END"

    skipped = f"""AND thread_id IN (SELECT e.thread_id FROM {d.new_rows('e')} JOIN {t} ON {t}.thread_id = e.thread_id
                  WHERE e.id > ? AND e.kind = 'llm' AND (e.ts_us, e.id) < ({t}.first_us, {t}.first_id))"""
    # PostgreSQL folds a batch at a time (the filter gains nothing there, and under the insert
    # transaction's generic plans it cost ~450 µs of PostgreSQL CPU per LLM event)
    only = f" {skipped}" if d.name == "sqlite" else ""

    def batch(scope: str) -> str:
        """The batch's turns per thread (``scope``: a further condition on them)."""
        if d.name != "sqlite":  # a batch of ~100: one window over it costs less than two groupings
            ttft = f"CAST({d.json_text('properties', 'time_to_first_token')} AS DOUBLE PRECISION)"
            return f"""SELECT b.thread_id, {first('user_id')}, {first('model')}, COUNT(*), MIN(b.ts_us), MAX(b.end_us),
               {first('ts_us')}, {first('id')}, {last('ts_us')}, {last('id')}, {last('failed')},
               SUM(b.failed), COALESCE(SUM(b.cost_usd), 0), COUNT(b.cost_usd), COALESCE(SUM(b.ttft), 0),
               COUNT(b.ttft)
        FROM (SELECT thread_id, id, ts_us, user_id, model, cost_usd, {ttft} AS ttft,
                     ts_us + CAST(ROUND(COALESCE(latency, 0) * 1000000) AS BIGINT) AS end_us,
                     CASE WHEN error IS NULL THEN 0 ELSE 1 END AS failed,
                     ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY ts_us, id) AS rf,
                     ROW_NUMBER() OVER (PARTITION BY thread_id ORDER BY ts_us DESC, id DESC) AS rl
              FROM {d.new_rows()} WHERE id > ? AND kind = 'llm' AND thread_id IS NOT NULL{scope}) AS b
        WHERE 1 = 1 GROUP BY b.thread_id"""
        ttft = f"CAST({d.json_text('b.properties', 'time_to_first_token')} AS DOUBLE PRECISION)"
        return f"""SELECT g.thread_id, f.user_id, f.model, g.turns, g.first_us, g.end_us, g.first_us, g.first_id,
               g.last_us, g.last_id, CASE WHEN l.error IS NULL THEN 0 ELSE 1 END, g.errors, g.cost_usd,
               g.cost_turns, g.ttft_s, g.ttft_turns
        FROM (SELECT b.thread_id, COUNT(*) AS turns, MIN(b.ts_us) AS first_us, MAX(b.ts_us) AS last_us,
                     MAX(b.ts_us + CAST(ROUND(COALESCE(b.latency, 0) * 1000000) AS BIGINT)) AS end_us,
                     MIN(CASE WHEN b.ts_us = m.first_us THEN b.id END) AS first_id,
                     MAX(CASE WHEN b.ts_us = m.last_us THEN b.id END) AS last_id,
                     SUM(CASE WHEN b.error IS NULL THEN 0 ELSE 1 END) AS errors,
                     COALESCE(SUM(b.cost_usd), 0) AS cost_usd, COUNT(b.cost_usd) AS cost_turns,
                     COALESCE(SUM({ttft}), 0) AS ttft_s, COUNT({ttft}) AS ttft_turns
              FROM {d.new_rows('b')} CROSS JOIN (SELECT thread_id, MIN(ts_us) AS first_us, MAX(ts_us) AS last_us
                   FROM {d.new_rows()} WHERE id > ? AND kind = 'llm' AND thread_id IS NOT NULL{scope}
                   GROUP BY thread_id) AS m
              WHERE m.thread_id = b.thread_id AND b.id > ? AND b.kind = 'llm' GROUP BY b.thread_id) AS g
        JOIN events f ON f.id = g.first_id JOIN events l ON l.id = g.last_id
        WHERE 1 = 1"""

    def upsert(scope: str) -> str:
        """The fold of new turns (``scope``: a further condition on them) into the threads."""
        return f"""INSERT INTO {t} (thread_id, user_id, model, turns, start_us, end_us, first_us, first_id,
                   last_us, last_id, last_error, errors, cost_usd, cost_turns, ttft_s, ttft_turns)
        {batch(scope)}
        ON CONFLICT (thread_id) DO UPDATE SET
            turns = {t}.turns + excluded.turns,
            end_us = {d.greatest(f'{t}.end_us', 'excluded.end_us')},
            {when(later, 'last_error')}, {when(later, 'last_id')}, {when(later, 'last_us')},
            errors = {t}.errors + excluded.errors, cost_usd = {t}.cost_usd + excluded.cost_usd,
            cost_turns = {t}.cost_turns + excluded.cost_turns, ttft_s = {t}.ttft_s + excluded.ttft_s,
            ttft_turns = {t}.ttft_turns + excluded.ttft_turns"""
    folded, assigned = upsert(only).rsplit("ON CONFLICT (thread_id) DO UPDATE SET", 1)
    # the first turn's time is the thread's start: an earlier one moves both
    return [f"{upsert('')}\n        WHERE NOT {earlier}",
            f"""{folded}ON CONFLICT (thread_id) DO UPDATE SET
            start_us = excluded.start_us, user_id = excluded.user_id, model = excluded.model,
            first_id = excluded.first_id, first_us = excluded.first_us,{assigned}
        WHERE {earlier}"""]


def _steps(db: Writer) -> list[str]:
    """The funnels' look-up table (:mod:`.funnels`); its DDL is in the store's migrations."""
    return [f"""INSERT INTO analytics_steps (event, user_id, ts_us, id, model)
                SELECT {name}, user_id, ts_us, id, model FROM {db.dialect.new_rows()} WHERE id > ?{extra}
                ON CONFLICT DO NOTHING"""
            for name, extra in (("event", ""), ("prompt_event_name", " AND kind = 'llm' AND prompt_event_name IS NOT NULL"))]


def create(db: Writer) -> None:
    for statement in STATEMENTS:
        db.execute(statement)


def apply(db: Writer, after_id: int) -> None:
    """Fold the events with ``id > after_id`` into the analytics tables (caller's transaction)."""
    for statement in (*_activity(db), *_daily(db), _first(db), _latency(db), *_steps(db), *_threads(db)):
        db.execute(statement, (after_id,) * statement.count("?"))
    feedback_rows.apply(db, after_id)


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


VERSION = "7"


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
