"""Conversations: turns, duration, time to first token, cost, errors, feedback, abandonment.

::

    conversations(db, AnalyticsQuery(user="alice"))
    # {"threads": N, "turns_p50": x, "turns_p90": x, "cost_p50": x, "cost_p90": x,
    #  "duration_p50_s": x, "duration_p90_s": x, "abandoned": N, "errors": N, …,
    #  "users": N, "threads_per_user_p50": x, "per_user": [{"user_id": …, "threads": N, …}, …]}

A thread is the LLM turns sharing a thread id; it is in the range when its first turn is, and
its user and model are the first turn's. Duration: from the first turn's start to the end of
the last (its time plus latency). Time to first token: the mean over turns that report
``time_to_first_token``. Cost percentiles are over threads with a known cost. A thread is
*abandoned* when its last turn failed or got negative feedback. Percentiles are nearest rank.
Read from ``threads`` (one row per thread); ``--event`` does not apply. A thread's
title (:func:`title_sql`) is its first prompt.
"""

from __future__ import annotations

from typing import Any

from trubrics_otel.server.store.dialect import Dialect, Reader
from trubrics_otel.server.analytics.feedback import thread_where
from trubrics_otel.server.analytics.query import AnalyticsError, AnalyticsQuery, nearest_ranks
from trubrics_otel.server.times import iso

ABANDONED = "(t.last_error = 1 OR t.last_id IN (SELECT f.turn_id FROM analytics_feedback f WHERE f.sentiment < 0))"
"""The last turn failed or got negative feedback (an uncorrelated IN: one set, probed per thread)."""


def conversations(db: Reader, q: AnalyticsQuery, top_users: int = 50) -> dict[str, Any]:
    """The threads' figures (module docstring) and the ``top_users`` with the most threads."""
    where, params = thread_where(q)
    threads_sql = f"FROM threads t WHERE {where}"
    (n, turns, errors, cost, cost_threads, ttft, ttft_turns, abandoned, failed_last, users), = db.rows(
        f"SELECT COUNT(*), SUM(t.turns), SUM(t.errors), SUM(t.cost_usd), "
        f"SUM(CASE WHEN t.cost_turns > 0 THEN 1 ELSE 0 END), SUM(t.ttft_s), SUM(t.ttft_turns), "
        f"SUM(CASE WHEN {ABANDONED} THEN 1 ELSE 0 END), SUM(t.last_error), COUNT(DISTINCT t.user_id) "
        f"{threads_sql}", params)

    def pct(expression: str, count: int, extra: str = "", few: bool = False) -> list[Any]:
        return nearest_ranks(db, f"SELECT {expression} AS v {threads_sql}{extra}", params, count, (0.5, 0.9), few=few)

    turns_p = pct("t.turns", n, few=True)
    cost_p = pct("t.cost_usd", cost_threads or 0, " AND t.cost_turns > 0")
    duration_p = pct("(t.end_us - t.start_us) / 1000000.0", n)
    # the top users by threads first, counted in the (user_id, start_us) index alone; then only
    # their threads are read for the other figures
    per_user = db.rows(
        f"SELECT t.user_id, COUNT(*), SUM(t.turns), SUM(t.cost_usd), SUM(CASE WHEN t.cost_turns > 0 THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {ABANDONED} THEN 1 ELSE 0 END), SUM(t.errors) {threads_sql} AND t.user_id IN "
        f"(SELECT t.user_id {threads_sql} GROUP BY t.user_id ORDER BY COUNT(*) DESC, t.user_id LIMIT ?) "
        f"GROUP BY t.user_id ORDER BY 2 DESC, 1", [*params, *params, top_users])
    users_p = nearest_ranks(db, f"SELECT COUNT(*) AS v {threads_sql} GROUP BY t.user_id", params, users or 0,
                            (0.5, 0.9), few=True)
    return {
        "threads": n, "turns": turns or 0, "errors": errors or 0, "abandoned": abandoned or 0,
        "last_turn_failed": failed_last or 0,
        "abandonment_rate": round((abandoned or 0) / n, 6) if n else None,
        "turns_p50": turns_p[0], "turns_p90": turns_p[1], "cost_usd": cost if cost_threads else None,
        "cost_p50": cost_p[0], "cost_p90": cost_p[1], "duration_p50_s": duration_p[0], "duration_p90_s": duration_p[1],
        "ttft_mean_s": round(ttft / ttft_turns, 6) if ttft_turns else None,
        "users": users, "threads_per_user_p50": users_p[0], "threads_per_user_p90": users_p[1],
        "per_user": [{"user_id": u, "threads": k, "turns": t, "cost_usd": c if cn else None,
                      "abandoned": a, "errors": e} for u, k, t, c, cn, a, e in per_user],
    }


def title_sql(thread: str, d: Dialect) -> str:
    """SQL for the title of the thread row aliased ``thread`` (``thread_id``, ``first_id``): its
    first turn's prompt or, when that turn recorded none (it failed first), its first prompt."""
    source, k = d.keyed("thread_id")
    return (f"COALESCE(NULLIF((SELECT e.prompt FROM events e WHERE e.id = {thread}.first_id), ''), "
            f"(SELECT e.prompt FROM {source} WHERE {k}.thread_id = {thread}.thread_id AND e.kind = 'llm' "
            f"AND e.prompt <> '' ORDER BY {k}.ts_us, {k}.id LIMIT 1))")


def conversation_list(db: Reader, q: AnalyticsQuery, *, search: str | None = None, only: str | None = None,
                      topic: int | None = None, limit: int = 100) -> dict[str, Any]:
    """Threads newest first, with their figures: ``search`` finds words in their prompts (case
    aside), ``only`` keeps ``abandoned`` or ``failed`` ones (a turn failed), ``topic`` those
    with a prompt of that topic (:mod:`.topics`)."""
    where, params = thread_where(q)
    if topic is not None:
        where += (f" AND EXISTS (SELECT 1 FROM {db.dialect.key_table('thread_id')} k JOIN analytics_prompts p "
                  "ON p.event_id = k.id WHERE k.thread_id = t.thread_id AND p.topic = ?)")
        params.append(topic)
    if only == "abandoned":
        where += f" AND {ABANDONED}"
    elif only == "failed":
        where += " AND t.errors > 0"
    elif only:
        raise AnalyticsError(f"only must be abandoned or failed, got {only!r}")
    if search and search.strip():
        # probed thread by thread, newest first, until the page is full (OFFSET 0 keeps PostgreSQL
        # from hashing every matching prompt first: it guesses a substring matches few)
        source, k = db.dialect.keyed("thread_id")
        where += (f" AND EXISTS (SELECT 1 FROM {source} WHERE {k}.thread_id = t.thread_id AND e.kind = 'llm' "
                  "AND LOWER(e.prompt) LIKE ? LIMIT 1 OFFSET 0)")
        params.append("%" + search.strip().lower().replace("\\", "").replace("%", "").replace("_", "") + "%")
    rows = db.rows(
        f"SELECT t.thread_id, t.user_id, t.model, t.turns, t.start_us, t.end_us, t.cost_usd, t.cost_turns, t.errors, "
        f"CASE WHEN {ABANDONED} THEN 1 ELSE 0 END, t.ttft_s, t.ttft_turns, "
        f"(SELECT COUNT(*) FROM analytics_feedback f WHERE f.thread_id = t.thread_id AND f.sentiment > 0), "
        f"(SELECT COUNT(*) FROM analytics_feedback f WHERE f.thread_id = t.thread_id AND f.sentiment < 0), "
        f"{title_sql('t', db.dialect)} "
        f"FROM threads t WHERE {where} ORDER BY t.start_us DESC, t.thread_id DESC LIMIT ?",
        [*params, limit])
    return {"threads": [
        {"thread_id": r[0], "user_id": r[1], "model": r[2], "turns": r[3], "start": iso(r[4]),
         "duration_s": (r[5] - r[4]) / 1e6, "cost_usd": r[6] if r[7] else None, "errors": r[8],
         "abandoned": bool(r[9]), "ttft_mean_s": round(r[10] / r[11], 6) if r[11] else None,
         "positive": r[12], "negative": r[13], "title": r[14]} for r in rows]}
