"""A store written by the release before the summary tables merged (``user_hours`` kept by
each fold, ``rollup`` indexed by user, ``analytics_daily`` by user before day) answers as
before once upgraded:
``stats`` and the analyses filtered by model or event give the same totals, buckets, users and
percentiles as a new store given the same events, and new events fold in."""

from __future__ import annotations

import dataclasses
import datetime as dt
from importlib import resources

import pytest

from trubrics_otel.server import Store
from trubrics_otel.server.analytics import api as analyses
from trubrics_otel.server.store import HOOKS, migrations
from trubrics_otel.server.stats import StatsQuery, stats

from analytics_data import rounded
from test_server_stats import T0, assert_matches, expected, sent_events

US = 1_000_000


class ReleaseBefore:
    """``user_hours`` as the release before folded it (a store hook, run beside the analytics
    tables' own; its table is in the first schema)."""

    def ensure(self, connection) -> None:  # and analytics_daily's indexes, the user before the day
        for name in ("event", "model"):
            connection.execute(f"DROP INDEX IF EXISTS analytics_daily_{name}")
            connection.execute(f"CREATE INDEX analytics_daily_{name} ON analytics_daily ({name}, user_id, day_us)")

    def apply(self, connection, after_id: int) -> None:
        connection.execute("""INSERT INTO user_hours SELECT DISTINCT ts_us - ts_us % 3600000000, user_id
            FROM events WHERE id > ? ON CONFLICT DO NOTHING""", (after_id,))


def queries() -> list[StatsQuery]:
    """Every way ``stats`` reads the merged tables: by hour, day and week, whole and cut days,
    open and closed ranges, each filter."""
    since, until = (int((T0 + dt.timedelta(hours=h)).timestamp() * US) for h in (10, 60))
    plain = [StatsQuery(by=by) for by in ("hour", "day", "week")]
    ranged = [StatsQuery(since_us=since, until_us=until), StatsQuery(since_us=since, by="hour"),
              StatsQuery(until_us=until, by="week")]
    filtered = [dataclasses.replace(q, **f) for q in (plain[1], ranged[0])
                for f in ({"model": "gpt-4o"}, {"event": "Thumbs up"}, {"user": "user-3"},
                          {"user": "user-3", "model": "gpt-4o"}, {"user": "user-3", "event": "Thumbs up"})]
    return plain + ranged + filtered


ANALYSES = [("active", {"period": "week", "model": "gpt-4o"}), ("active", {"period": "day", "event": "Thumbs up"}),
            ("retention", {"period": "day", "event": "Page view"}), ("active", {"period": "day", "model": "gpt-4o",
                                                                           "user": "user-3"})]


def answers(store: Store) -> list[dict]:
    """``stats`` for each of :func:`queries`, and the analyses reading ``analytics_daily``."""
    with store.connection() as c:
        found = [rounded(stats(c, q, by_model=True)) for q in queries()]
    return found + [analyses.answer(store, name, params) for name, params in ANALYSES]


def index_columns(store: Store, name: str) -> list[str]:
    with store.connection() as c:
        if c.dialect.name == "sqlite":
            return [row[2] for row in c.execute(f"PRAGMA index_info({name})").fetchall()]
        found = c.execute("SELECT indexdef FROM pg_indexes WHERE indexname = ?", (name,)).fetchone()
        return [] if found is None else [column.strip() for column in found[0].rsplit("(", 1)[1].rstrip(")").split(",")]


def insert(store: Store, plain: list[dict], llm: list[dict]) -> None:
    for start in range(0, max(len(plain), len(llm)), 40):
        store.insert(plain[start:start + 40], llm[start:start + 40])


def tables(store: Store) -> set[str]:
    sql = {"sqlite": "SELECT name FROM sqlite_master WHERE type = 'table'",
           "postgresql": "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"}
    with store.connection() as c:
        return {name for (name,) in c.execute(sql[c.dialect.name]).fetchall()}


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_store_from_before_the_merge_gives_the_same_answers(engine, tmp_path, request, monkeypatch):
    location = (str(tmp_path / "before.sqlite3") if engine == "sqlite"
                else request.getfixturevalue("postgres_cluster").create_database())  # empty: not the template
    fresh_location = (str(tmp_path / "fresh.sqlite3") if engine == "sqlite"
                      else request.getfixturevalue("postgres_cluster").create_database())
    plain, llm = sent_events()
    first, later = (plain[:50], llm[:100]), (plain[50:], llm[100:])
    folder = resources.files("trubrics_otel.server.store").joinpath("schema", engine)
    ours = next(int(f.name[:3]) for f in folder.iterdir() if f.name.endswith("_summary_merge.sql"))
    every = migrations.steps
    with monkeypatch.context() as old:
        old.setattr(migrations, "steps", lambda e: tuple(s for s in every(e) if s[0] != ours))
        before = Store(location, hooks=[*HOOKS, ReleaseBefore()])
        insert(before, *first)
        with before.connection() as c:
            assert c.execute("SELECT COUNT(*) FROM user_hours").fetchone()[0] > 0
        assert index_columns(before, "analytics_daily_model") == ["model", "user_id", "day_us"]
        assert index_columns(before, "rollup_user") == ["user_id", "hour_us"]
        answered = answers(before)
        before.close()

    upgraded, fresh = Store(location), Store(fresh_location)
    assert "user_hours" not in tables(upgraded)
    assert index_columns(upgraded, "rollup_user") == []  # one user's numbers: from their events
    for name in ("event", "model"):  # a batch's rows on adjacent pages
        assert index_columns(upgraded, f"analytics_daily_{name}") == [name, "day_us", "user_id"]
    insert(fresh, *first)
    assert answers(upgraded) == answered == answers(fresh)
    insert(upgraded, *later)
    insert(fresh, *later)
    got = answers(upgraded)
    assert got == answers(fresh)
    assert_matches(got[1]["totals"], expected(plain, llm))
    upgraded.close()
    fresh.close()
