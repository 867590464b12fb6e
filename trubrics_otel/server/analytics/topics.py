"""What users ask, and where they struggle: prompt topics and frustration signals, no LLM.

::

    refresh(db)                    # assign new prompts (refit when the prompts doubled): a Writer
    topics(db, AnalyticsQuery())
    # {"topics": [{"topic": 3, "label": "refund · order · days", "terms": [...], "prompts": N,
    #              "users": N, "negative_feedback": N, "errors": N, "rephrases": N, "retries": N}, …]}

The method (chosen for speed without a dependency; see docs-incoming/analytics.md for the
measurements): prompts become sets of words (3+ letters, no stop words); the word found in the
most not-yet-covered prompts anchors a topic, repeatedly, up to ``MAX_TOPICS`` topics each
holding at least ``MIN_SHARE`` of the prompts; a topic's profile is its prompts' words weighted
by tf-idf (the top ``PROFILE`` kept), and each prompt goes to the topic whose profile scores
its words highest (``-1``, "other", when none shares a word). A fit reads every prompt once;
afterwards new prompts are only assigned, until their number doubles since the fit.

Frustration signals, per prompt, from the previous turn of the same user and thread within
``FOLLOW_UP_US``: a *rephrase* when the word sets' Jaccard similarity is at least
``REPHRASE_JACCARD``; a *retry* when that turn failed. Negative feedback comes from
:mod:`.feedback_rows`.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from trubrics_otel.server.store.dialect import Reader, Writer
from trubrics_otel.server.analytics.query import AnalyticsQuery, range_where

MAX_TOPICS = 20
MIN_SHARE = 0.01
PROFILE = 30
TERMS_SHOWN = 8
REPHRASE_JACCARD = 0.6
FOLLOW_UP_US = 10 * 60 * 1_000_000
_WORD = re.compile(r"[^\W\d_]{3,}")
STOP_WORDS = frozenset("""
about above after again against all also and any are because been before being below between both but
can cannot could did does doing down during each few for from further had has have having her here hers
herself him himself his how into its itself just let like more most much must myself nor not now off
once only other ought our ours ourselves out over own please same she should some such than that the
their theirs them themselves then there these they this those through too under until very was way were
what when where which while who whom why will with would you your yours yourself yourselves get got
make want need know tell give use using thanks thank hello hey
""".split())


def words(text: str | None) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall((text or "").lower()) if w not in STOP_WORDS)


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 0.0


def fit(documents: Sequence[frozenset[str]]) -> list[dict[str, float]]:
    """Topic profiles (word → weight) for the documents (see the module's docstring)."""
    n = len(documents)
    df = Counter(w for d in documents for w in d)
    idf = {w: math.log((1 + n) / (1 + k)) + 1 for w, k in df.items()}
    uncovered = set(range(n))
    postings: dict[str, list[int]] = {}
    for i, d in enumerate(documents):
        for w in d:
            postings.setdefault(w, []).append(i)
    profiles = []
    left = Counter(df)  # per word: the uncovered prompts holding it
    while len(profiles) < MAX_TOPICS and left:
        best = min(left, key=lambda w: (-left[w], w))
        if left[best] < max(2, MIN_SHARE * n):
            break
        members = [i for i in postings[best] if i in uncovered]
        uncovered.difference_update(members)
        for i in members:
            left.subtract(documents[i])
        left = +left  # drop words no uncovered prompt holds
        counts = Counter(w for i in members for w in documents[i])
        weights = {w: c * idf[w] for w, c in counts.items()}
        weights[best] *= 2  # the anchor decides ties
        top = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))[:PROFILE]
        total = sum(v for _, v in top)
        profiles.append({w: v / total for w, v in top})
    return profiles


def assign(profiles: Sequence[dict[str, float]], document: frozenset[str]) -> int:
    best, best_score = -1, 0.0
    for topic, profile in enumerate(profiles):
        score = sum(profile.get(w, 0.0) for w in document)
        if score > best_score:
            best, best_score = topic, score
    return best


_TURNS = """SELECT id, prompt, error, ts_us, prev_prompt, prev_error, prev_ts, user_id, model FROM (
    SELECT id, prompt, error, ts_us, user_id, model, LAG(prompt) OVER w AS prev_prompt, LAG(error) OVER w AS prev_error,
           LAG(ts_us) OVER w AS prev_ts
    FROM events WHERE kind = 'llm' AND {scope}
    WINDOW w AS (PARTITION BY user_id, COALESCE(thread_id, '') ORDER BY ts_us, id)) AS turns
WHERE id > ? ORDER BY id"""


def refresh(db: Writer, *, refit: bool = False) -> int:
    """Bring ``analytics_prompts`` up to date; return the number of prompts assigned."""
    meta = dict(db.rows("SELECT key, value FROM analytics_meta WHERE key LIKE 'topics_%'"))
    last_id, fitted = int(meta.get("topics_last_id", 0)), int(meta.get("topics_fit_n", 0))
    assigned = int(meta.get("topics_assigned_n", 0))
    if not refit and last_id and not db.rows(
            f"SELECT 1 FROM {db.dialect.new_rows()} WHERE id > ? AND kind = 'llm' LIMIT 1", (last_id,)):
        return 0  # nothing new: the usual case, answered from the rowid range
    scope = "1 = 1" if refit or not last_id else (
        f"user_id IN (SELECT user_id FROM {db.dialect.new_rows()} WHERE id > {int(last_id)} AND kind = 'llm')")
    rows = db.rows(_TURNS.format(scope=scope), (0 if refit else last_id,))
    if not refit and last_id and assigned + len(rows) >= 2 * fitted:  # doubled since the fit: fit again
        rows = db.rows(_TURNS.format(scope="1 = 1"), (0,))
        last_id = 0
    if refit:
        last_id = 0
    if not rows:
        return 0
    documents = [words(r[1]) for r in rows]
    if last_id == 0:
        profiles = fit(documents)
        db.execute("DELETE FROM analytics_topics")
        db.execute("DELETE FROM analytics_prompts")
        db.executemany("INSERT INTO analytics_topics (topic, label, terms) VALUES (?, ?, ?)",
                       [(i, " · ".join(_terms(p)[:3]), json.dumps(_terms(p))) for i, p in enumerate(profiles)])
        _set(db, "topics_fit_n", len(rows))
        assigned = 0
        _set(db, "topics_profiles", json.dumps([[list(p), list(p.values())] for p in profiles]))
    else:
        profiles = [dict(zip(terms, weights)) for terms, weights in _profiles(db)]
    found = []
    for (event_id, _, error, ts, prev_prompt, prev_error, prev_ts, user, model), document in zip(rows, documents):
        follow_up = prev_ts is not None and ts - prev_ts <= FOLLOW_UP_US
        rephrase = follow_up and prev_prompt is not None and jaccard(document, words(prev_prompt)) >= REPHRASE_JACCARD
        found.append((event_id, assign(profiles, document), int(rephrase), int(follow_up and prev_error is not None),
                         user, ts, model, int(error is not None)))
    db.executemany("INSERT INTO analytics_prompts (event_id, topic, rephrase, retry, user_id, ts_us, model, failed) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING", found)
    _set(db, "topics_last_id", max(r[0] for r in rows))
    _set(db, "topics_assigned_n", assigned + len(rows))
    return len(found)


def _terms(profile: dict[str, float]) -> list[str]:
    return [w for w, _ in sorted(profile.items(), key=lambda kv: (-kv[1], kv[0]))][:TERMS_SHOWN]


def _profiles(db: Reader) -> list[tuple[list[str], list[float]]]:
    stored = db.rows("SELECT value FROM analytics_meta WHERE key = 'topics_profiles'")
    return [tuple(p) for p in json.loads(stored[0][0])] if stored else []  # type: ignore[misc]


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
