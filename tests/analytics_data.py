"""Raw events for the analytics tests: six weeks, 240 users, planted topics, funnels and feedback.

Each LLM turn and product event is a dict as the ingestion API takes it; ``expected_*`` in the
tests recompute every figure from these lists in plain Python.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

T0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)  # a Monday; the data crosses into April
DAYS = 42
MODELS = ("gpt-4o", "claude-sonnet-4")
TOPICS = {
    "refund": ["how do I get a refund for order {n}", "refund request for my order {n}",
               "when will my refund for order {n} arrive"],
    "password": ["reset password for account {n}", "password reset link expired again",
                 "cannot reset my password, account locked {n}"],
    "invoice": ["download invoice pdf for march", "invoice address wrong on invoice {n}",
                "send the invoice copy to accounting"],
    "shipping": ["track shipping parcel {n}", "shipping delayed parcel stuck in customs",
                 "change shipping address parcel {n}"],
}
FUNNEL = ("Sign up", "Create project", "Upgrade")


def ts(moment: dt.datetime) -> str:
    return moment.isoformat()


def generate(seed: int = 27, users: int = 240) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)
    plain: list[dict] = []
    llm: list[dict] = []
    n = 0
    for u in range(users):
        user = f"user-{u:03d}"
        first = rng.randrange(DAYS - 7)
        days = sorted({first, *(d for d in range(first + 1, DAYS) if rng.random() < 0.15)})
        for day in days:
            base = T0 + dt.timedelta(days=day, hours=rng.randrange(20), minutes=rng.randrange(60))
            plain.append({"user_id": user, "event": "Open app", "timestamp": ts(base), "properties": {}})
            if day == first and rng.random() < 0.7:  # the planted funnel, some steps late or missing
                t = base
                for k, step in enumerate(FUNNEL):
                    if k and rng.random() < 0.35:
                        break
                    t += dt.timedelta(days=rng.choice((0, 1, 3, 9)) if k else 0, minutes=5 + k)
                    plain.append({"user_id": user, "event": step, "timestamp": ts(t),
                                  "properties": {"plan": rng.choice(("free", "team"))}})
            for th in range(rng.randrange(3)):
                thread = f"t-{user}-{day}-{th}"
                topic = rng.choice(sorted(TOPICS))
                t = base + dt.timedelta(minutes=10 + 30 * th)
                plain.append({"user_id": user, "event": "Chat opened", "timestamp": ts(t),
                              "properties": {"$thread_id": thread}})
                for turn in range(1 + rng.randrange(4)):
                    n += 1
                    t += dt.timedelta(minutes=1 + rng.randrange(3), seconds=rng.randrange(60))
                    prompt = rng.choice(TOPICS[topic]).format(n=rng.randrange(1000, 9999))
                    if turn and rng.random() < 0.2:  # a rephrasing of the previous prompt
                        prompt = llm[-1]["prompt"] + " please"
                    props = {"$thread_id": thread, "model": rng.choice(MODELS),
                             "$trace_id": f"{n:032x}", "$span_id": f"{n:016x}"}
                    if rng.random() < 0.8:
                        props["cost_usd"] = rng.randint(1, 500) / 10_000
                    if rng.random() < 0.3:
                        props["time_to_first_token"] = rng.randint(1, 90) / 100
                    if rng.random() < 0.1:
                        props["error.type"] = "RateLimitError"
                    llm.append({"user_id": user, "prompt": prompt, "generation": f"answer {n}",
                                "timestamp": ts(t), "latency": rng.randint(1, 50) / 10, "properties": props})
                    _feedback(rng, plain, user, thread, t, n)
    return plain, llm


def _feedback(rng: random.Random, plain: list[dict], user: str, thread: str, t: dt.datetime, n: int) -> None:
    """Feedback of every kind on some turns, and look-alikes that are not feedback."""
    later = ts(t + dt.timedelta(seconds=30))
    roll = rng.random()
    if roll < 0.08:
        plain.append({"user_id": user, "event": "Rated", "timestamp": later,
                      "properties": {"$thread_id": thread, "$feedback": rng.choice((True, False, 1, 0, 0.25))}})
    elif roll < 0.14:  # a score from the tracing API on this turn's span
        plain.append({"user_id": user, "event": "Score", "timestamp": later, "properties": {
            "observation_type": "score", "name": "helpful", "value": rng.choice((1, 0, "great")),
            "trace_id": f"{n:032x}", "observation_id": f"{n:016x}", "comment": None,
            "$thread_id": thread, "$trace_id": f"{n:032x}", "$span_id": f"{n:016x}f"[-16:]}})
    elif roll < 0.18:
        plain.append({"user_id": user, "event": "Thumbs down", "timestamp": later,
                      "properties": {"$thread_id": thread}})
    elif roll < 0.22:  # a span carrying $feedback: never feedback
        plain.append({"user_id": user, "event": "retrieve", "timestamp": later, "properties": {
            "observation_type": "span", "$thread_id": thread, "$feedback": 1}})


def rounded(value: Any) -> Any:
    """Floats to 6 places, in dicts and lists: PostgreSQL adds floats in the order it reads the
    rows, one engine's sum may differ from the other's in the last digit."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value
