"""What users ask, and where they struggle: prompt topics and frustration signals, no LLM.

::

    refresh(db)                    # assign new prompts (refit when the prompts doubled): a Writer
    topics(db, AnalyticsQuery())
    # {"topics": [{"topic": 3, "label": "refund · order · money", "terms": [...], "prompts": N,
    #              "users": N, "negative_feedback": N, "errors": N, "rephrases": N, "retries": N}, …]}

The topics come from :mod:`.topic_model` (scikit-learn, the ``[topics]`` extra): a fit reads
every prompt once (the model itself learns from an even sample of them), stores the model in
``analytics_meta`` and each prompt's topic in ``analytics_prompts``; afterwards new prompts are
only assigned with the stored model, until their number doubles since the fit. Without
scikit-learn, :func:`refresh` raises :class:`.topic_model.MissingExtra` naming the extra (the
read API and the CLI turn it into a one-line notice); "nothing new" never imports it.

Frustration signals, per prompt, from the previous turn of the same user and thread within
``FOLLOW_UP_US``: a *rephrase* when the two prompts' character 4-gram tf-idf cosine is at least
``topic_model.REPHRASE_SIMILARITY``; a *retry* when that turn failed. Negative feedback comes
from :mod:`.feedback_rows`.
"""

from __future__ import annotations

import json
from typing import Any

from trubrics_otel.server.analytics import topic_model
from trubrics_otel.server.analytics.query import AnalyticsQuery, range_where
from trubrics_otel.server.store.dialect import Reader, Writer

FOLLOW_UP_US = 10 * 60 * 1_000_000
_TURNS = """SELECT id, prompt, error, ts_us, prev_prompt, prev_error, prev_ts, user_id, model, prev_id FROM (
    SELECT e.id AS id, e.prompt AS prompt, e.error AS error, e.ts_us AS ts_us, e.user_id AS user_id, e.model AS model,
           LAG(e.prompt) OVER w AS prev_prompt, LAG(e.error) OVER w AS prev_error,
           LAG(e.ts_us) OVER w AS prev_ts, LAG(e.id) OVER w AS prev_id
    FROM {source} WHERE e.kind = 'llm' AND {scope}
    WINDOW w AS (PARTITION BY e.user_id, COALESCE(e.thread_id, '') ORDER BY e.ts_us, e.id)) AS turns
WHERE id > ? ORDER BY id"""


def refresh(db: Writer, *, refit: bool = False) -> int:
    """Bring ``analytics_prompts`` up to date; return the number of prompts assigned."""
    meta = dict(db.rows("SELECT key, value FROM analytics_meta WHERE key IN "
                        "('topics_last_id', 'topics_fit_n', 'topics_assigned_n')"))
    last_id, fitted = int(meta.get("topics_last_id", 0)), int(meta.get("topics_fit_n", 0))
    assigned = int(meta.get("topics_assigned_n", 0))
    if not refit and last_id and not db.rows(
            f"SELECT 1 FROM {db.dialect.new_rows()} WHERE id > ? AND kind = 'llm' LIMIT 1", (last_id,)):
        return 0  # nothing new: the usual case, answered from the rowid range
    topic_model.require()
    stored = None if refit or not last_id else db.rows("SELECT value FROM analytics_meta WHERE key = 'topics_model'")
    if not stored:  # a first fit, --refit, or a model kept by an older version
        refit = True
    every = _TURNS.format(source="events e", scope="1 = 1")
    source, k = db.dialect.keyed("user_id")  # the turns of the users with new ones: by user
    rows = db.rows(every, (0,)) if refit else db.rows(_TURNS.format(source=source, scope=(
        f"{k}.user_id IN (SELECT user_id FROM {db.dialect.new_rows()} WHERE id > {int(last_id)} AND kind = 'llm')")),
        (last_id,))
    if not refit and assigned + len(rows) >= 2 * fitted:  # doubled since the fit: fit again
        refit = True
        rows = db.rows(every, (0,))
    if not rows:
        return 0
    if refit:
        model = topic_model.fit([r[1] or "" for r in rows])
        db.execute("DELETE FROM analytics_topics")
        db.execute("DELETE FROM analytics_prompts")
        db.executemany("INSERT INTO analytics_topics (topic, label, terms) VALUES (?, ?, ?)",
                       [(i, " · ".join(terms[:3]) or f"topic {i}", json.dumps(terms))  # no word: chatter, emoji
                        for i, terms in enumerate(model.terms)])
        db.execute("DELETE FROM analytics_meta WHERE key = 'topics_profiles'")  # an older version's model
        _set(db, "topics_model", model.dumps())
        _set(db, "topics_fit_n", len(rows))
        assigned = 0
    else:
        model = topic_model.TopicModel.loads(stored[0][0])  # type: ignore[index]
    found = _found(rows, model)
    db.executemany("INSERT INTO analytics_prompts (event_id, topic, rephrase, retry, user_id, ts_us, model, failed) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING", found)
    _set(db, "topics_last_id", max(r[0] for r in rows))
    _set(db, "topics_assigned_n", assigned + len(rows))
    return len(found)


def _found(rows: list[tuple[Any, ...]], model: topic_model.TopicModel) -> list[tuple[Any, ...]]:
    """The ``analytics_prompts`` rows: topic, rephrase, retry (see the module's docstring)."""
    index = {r[0]: i for i, r in enumerate(rows)}
    follow_up = [r[6] is not None and r[3] - r[6] <= FOLLOW_UP_US for r in rows]
    previous = [index.get(r[9], r[4]) if near and r[4] is not None else None for r, near in zip(rows, follow_up)]
    topics, similarity = model.place([r[1] or "" for r in rows], previous)
    return [(event_id, topic, int(score >= topic_model.REPHRASE_SIMILARITY), int(near and prev_error is not None),
             user, ts, model_name, int(error is not None))
            for (event_id, _, error, ts, _, prev_error, _, user, model_name, _), topic, score, near
            in zip(rows, topics, similarity, follow_up)]


def _set(db: Writer, key: str, value: Any) -> None:
    db.execute("DELETE FROM analytics_meta WHERE key = ?", (key,))
    db.execute("INSERT INTO analytics_meta (key, value) VALUES (?, ?)", (key, str(value)))


def topics(db: Reader, q: AnalyticsQuery) -> dict[str, Any]:
    """Per topic: prompts, users, errors, negative feedback, rephrases and retries (from
    ``analytics_prompts`` alone; joined to the events only to filter by event name)."""
    where, params = _prompt_where(q)
    labels = {t: (label, json.loads(terms)) for t, label, terms in db.rows(
        "SELECT topic, label, terms FROM analytics_topics")}
    rows = db.rows(f"SELECT p.topic, COUNT(*), COUNT(DISTINCT p.user_id), SUM(p.failed), SUM(p.rephrase), "
                   f"SUM(p.retry) FROM analytics_prompts p WHERE {where} GROUP BY p.topic", params)
    negative = dict(db.rows(f"SELECT p.topic, COUNT(*) FROM analytics_prompts p WHERE {where} AND p.event_id IN "
                            f"(SELECT f.turn_id FROM analytics_feedback f WHERE f.sentiment < 0) GROUP BY p.topic",
                            params))
    found = [{"topic": t, "label": labels.get(t, ("other", []))[0], "terms": labels.get(t, ("other", []))[1],
              "prompts": n, "users": users, "errors": errors, "error_rate": round(errors / n, 6),
              "rephrases": rephrases, "retries": retries, "negative_feedback": negative.get(t, 0)}
             for t, n, users, errors, rephrases, retries in rows]
    found.sort(key=lambda t: (-t["prompts"], t["topic"]))
    return {"topics": found, "prompts": sum(t["prompts"] for t in found)}


def _prompt_where(q: AnalyticsQuery) -> tuple[str, list[Any]]:
    params: list[Any] = []
    clauses = ["1 = 1", *range_where(q, "p.ts_us", params)]
    for column, value in (("user_id", q.user), ("model", q.model)):
        if value is not None:
            clauses.append(f"p.{column} = ?")
            params.append(value)
    if q.event is not None:
        clauses.append("EXISTS (SELECT 1 FROM events e WHERE e.id = p.event_id AND (e.event = ? OR e.prompt_event_name = ?))")
        params += [q.event, q.event]
    return " AND ".join(clauses), params
