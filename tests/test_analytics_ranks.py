"""The fast paths of the analyses answer what the plain definitions do (real SQLite, in memory).

Percentiles of repeating values come from a histogram's running sum; the per-user table of
conversations reads only the top users' threads. Both are checked against Python on data made
to hit their edges: ranks landing exactly on a histogram boundary, users tied on threads.
"""

from __future__ import annotations

import random
import sqlite3

from trubrics_otel.server.analytics import schema
from trubrics_otel.server.analytics.conversations import conversations
from trubrics_otel.server.store import derived, migrations
from trubrics_otel.server.store.sqlite import SQLiteConnection
from trubrics_otel.server.store.threads import COLUMNS
from trubrics_otel.server.analytics.query import AnalyticsQuery, nearest_ranks, percentile_list


def test_histogram_percentiles_are_the_nearest_rank() -> None:
    db = sqlite3.connect(":memory:", factory=SQLiteConnection)
    db.execute("CREATE TABLE v (v INTEGER)")
    rng = random.Random(3)
    for n in range(1, 41):
        values = [rng.choice((1, 1, 2, 3, 3, 3, 7)) for _ in range(n)]
        db.execute("DELETE FROM v")
        db.executemany("INSERT INTO v VALUES (?)", [(x,) for x in values])
        ps = (0.1, 0.5, 0.9, 1.0)
        expected = [percentile_list(values, p) for p in ps]
        for few in (True, False):
            assert nearest_ranks(db, "SELECT v FROM v", [], n, ps, few=few) == expected, (values, few)


def _thread(n: int, user: str, turns: int) -> tuple[object, ...]:
    """A row of the store's ``threads`` (store.threads.COLUMNS)."""
    return (f"t{n}", user, "m", turns, n, n, n, n, n + 10, 0, 0, None, None, 0.0, 0, 0.0, 0)


def test_conversations_top_users_are_the_most_threads_then_by_id() -> None:
    db = sqlite3.connect(":memory:", factory=SQLiteConnection)
    derived.register_functions(db)  # as the engine's connections have them (a migration uses one)
    migrations.apply(db, "sqlite")  # the store's tables (threads), then the analyses'
    schema.create(db)
    rng = random.Random(5)
    counts = {f"user-{u:02d}": rng.choice((1, 2, 2, 3, 3, 4)) for u in range(40)}  # many ties
    rows, n = [], 0
    for user, k in counts.items():
        for _ in range(k):
            n += 1
            rows.append(_thread(n, user, rng.randint(1, 5)))
    db.executemany(f"INSERT INTO threads VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    got = conversations(db, AnalyticsQuery(), top_users=7)
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:7]
    assert [(u["user_id"], u["threads"]) for u in got["per_user"]] == top
    turns = {u: sum(r[3] for r in rows if r[1] == u) for u, _ in top}
    assert [u["turns"] for u in got["per_user"]] == [turns[u] for u, _ in top]
    per_user = list(counts.values())
    assert (got["threads_per_user_p50"], got["threads_per_user_p90"]) == (
        percentile_list(per_user, 0.5), percentile_list(per_user, 0.9))
    assert (got["turns_p50"], got["turns_p90"]) == (
        percentile_list([r[3] for r in rows], 0.5), percentile_list([r[3] for r in rows], 0.9))
