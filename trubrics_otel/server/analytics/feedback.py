"""Feedback: how much, how positive, on which share of conversations and LLM turns.

::

    feedback(db, AnalyticsQuery(since_us=...))
    # {"totals": {"feedback": N, "positive": N, "negative": N, "threads": N,
    #             "threads_with_feedback": N, "llm_turns": N, "turns_with_feedback": N, …},
    #  "by_model": [{"model": str, "feedback": N, …}], "by_assistant": […], "by_day": […],
    #  "recent": [{"timestamp": ISO, "value": x, "label": str, …}, …]}

What counts as feedback, its value and sentiment, and the turn it refers to: see
:mod:`.feedback_rows`. Feedback is counted by its own time; ``llm_turns`` are the LLM events in
the range, ``turns_with_feedback`` those of them any feedback refers to; ``threads`` are the
conversations whose first turn is in the range (their user and model: the first turn's),
``threads_with_feedback`` those of them with any feedback. ``--model`` keeps feedback on that
model's turns; ``--event`` keeps feedback events of that name (``Score`` for scores).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from trubrics_otel.server.store.dialect import DAY_US, Reader
from trubrics_otel.server.analytics.query import AnalyticsQuery, event_where, range_where
from trubrics_otel.server.times import iso

_SUMS = ("COUNT(*), SUM(CASE WHEN sentiment > 0 THEN 1 ELSE 0 END), "
         "SUM(CASE WHEN sentiment < 0 THEN 1 ELSE 0 END), AVG(value)")


def feedback_where(q: AnalyticsQuery, alias: str = "f") -> tuple[str, list[Any]]:
    """SQL and parameters keeping the ``analytics_feedback`` rows of ``q``."""
    params: list[Any] = []
    clauses = ["1 = 1", *range_where(q, f"{alias}.ts_us", params)]
    for column, value in (("user_id", q.user), ("model", q.model), ("event", q.event)):
        if value is not None:
            clauses.append(f"{alias}.{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def thread_where(q: AnalyticsQuery, alias: str = "t") -> tuple[str, list[Any]]:
    """SQL and parameters keeping the ``threads`` rows of ``q``: a thread is in the
    range when its first turn is; ``event`` does not apply."""
    params: list[Any] = []
    clauses = ["1 = 1", *range_where(q, f"{alias}.start_us", params)]
    for column, value in (("user_id", q.user), ("model", q.model)):
        if value is not None:
            clauses.append(f"{alias}.{column} = ?")
            params.append(value)
    return " AND ".join(clauses), params


def _group(db: Reader, key: str, where: str, params: list[Any], label: str) -> list[dict[str, Any]]:
    rows = db.rows(f"SELECT {key} AS k, {_SUMS} FROM analytics_feedback f WHERE {where} GROUP BY k ORDER BY k",
                   params)
    return [{label: k, "feedback": n, "positive": pos, "negative": neg,
             "mean_value": None if mean is None else round(mean, 6)} for k, n, pos, neg, mean in rows]


def feedback(db: Reader, q: AnalyticsQuery, recent: int = 50) -> dict[str, Any]:
    """Totals and rates, then the same by model, assistant, name and day, and the ``recent``
    latest feedback with their values (the module docstring defines each)."""
    where, params = feedback_where(q)
    (n, pos, neg, mean), = db.rows(f"SELECT {_SUMS} FROM analytics_feedback f WHERE {where}", params)
    turn_where, turn_params = event_where(q, "e")
    # only LLM events carry a model (store.rows): with --model the count is the model index's alone
    llm = "" if q.model is not None else "e.kind = 'llm' AND "
    source, count_where, count_params = "events e", turn_where, turn_params
    if q.user is not None:  # one user's turns: by user (Dialect.keyed)
        source, k = db.dialect.keyed("user_id")
        others, others_params = event_where(dataclasses.replace(q, user=None), "e")
        count_where, count_params = f"{k}.user_id = ? AND {others}", [q.user, *others_params]
    (turns,), = db.rows(f"SELECT COUNT(*) FROM {source} WHERE {llm}{count_where}", count_params)
    (rated_turns,), = db.rows(
        f"SELECT COUNT(DISTINCT f.turn_id) FROM analytics_feedback f JOIN events e ON e.id = f.turn_id "
        f"WHERE {turn_where}", turn_params)
    t_where, t_params = thread_where(q)
    (threads, rated_threads), = db.rows(
        f"SELECT COUNT(*), SUM(CASE WHEN EXISTS (SELECT 1 FROM analytics_feedback f "
        f"WHERE f.thread_id = t.thread_id) THEN 1 ELSE 0 END) FROM threads t WHERE {t_where}", t_params)
    totals = {
        "feedback": n, "positive": pos or 0, "negative": neg or 0,
        "mean_value": None if mean is None else round(mean, 6),
        "threads": threads, "threads_with_feedback": rated_threads or 0,
        "thread_feedback_rate": round((rated_threads or 0) / threads, 6) if threads else None,
        "llm_turns": turns, "turns_with_feedback": rated_turns,
        "turn_feedback_rate": round(rated_turns / turns, 6) if turns else None,
    }
    rows = db.rows(
        f"SELECT f.event_id, f.ts_us, f.user_id, f.event, f.source, f.name, f.value, f.label, f.sentiment, "
        f"f.thread_id, f.turn_id, f.link, f.model FROM analytics_feedback f WHERE {where} "
        f"ORDER BY f.ts_us DESC, f.event_id DESC LIMIT ?", [*params, recent])
    keys = ("id", "timestamp", "user_id", "event", "source", "name", "value", "label", "sentiment",
            "thread_id", "turn_id", "link", "model")
    return {
        "totals": totals,
        "by_model": _group(db, "COALESCE(f.model, '(none)')", where, params, "model"),
        "by_assistant": _group(db, "COALESCE(f.assistant_id, '(none)')", where, params, "assistant"),
        "by_name": _group(db, "COALESCE(f.name, f.event)", where, params, "name"),
        "by_day": [{**row, "day": iso(row["day"])}
                   for row in _group(db, f"f.ts_us - f.ts_us % {DAY_US}", where, params, "day")],
        "recent": [dict(zip(keys, (r[0], iso(r[1]), *r[2:]))) for r in rows],
    }
