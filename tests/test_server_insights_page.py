"""The page's product analytics views in headless Chromium: each shows what the read API
computes (itself checked against raw events in test_analytics.py), count axes from zero with
whole-number ticks, a custom date range, CSV exports, thread search, the trace waterfall, no
polling after a 404, and user-supplied text kept as text in every view."""

from __future__ import annotations

import datetime as dt
import time
from urllib.parse import unquote

import pytest
import requests
from analytics_data import FUNNEL, T0, generate
from browser import (  # noqa: F401 (browser: a fixture)
    browser,
    console_errors,
    needs_chromium,
    screenshot,
    settled,
    show,
    wait_for_text,
)

from trubrics_otel.server import LocalServer

pytestmark = needs_chromium


def post(server: LocalServer, kind: str, events: list[dict]) -> None:
    for start in range(0, len(events), 100):
        requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, timeout=30,
                      json=events[start:start + 100]).raise_for_status()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    plain, llm = generate(users=60)
    with LocalServer(tmp_path_factory.mktemp("insights") / "events.sqlite3") as server:
        post(server, "publish_events", plain)
        post(server, "publish_llm_events", llm)
        yield server


def api(server: LocalServer, name: str, **params) -> dict:
    response = requests.get(f"{server.url}/api/{name}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def table_rows(browser, name: str) -> list[list[str]]:
    rows = browser.find_elements("css selector", f".data-table[data-table='{name}'] tbody tr")
    return [[td.text for td in tr.find_elements("css selector", "td")] for tr in rows]


def csv_lines(browser, name: str) -> list[str]:
    href = browser.find_element("css selector", f"a[data-csv='{name}']").get_attribute("href")
    assert href.startswith("data:text/csv")
    return unquote(href.split(",", 1)[1]).strip().split("\r\n")


def assert_count_axis(browser, title: str) -> None:
    """The chart's count axis starts at zero and its ticks are whole numbers."""
    y_min, ticks = browser.execute_script(
        "const u = document.querySelector(`[data-chart='${arguments[0]}']`).plot; "
        "return [u.scales.y.min, u.axes[1]._splits]", title)
    assert y_min == 0 and ticks and all(float(t).is_integer() for t in ticks), (title, y_min, ticks)


def test_users_and_retention_view(server, browser):
    show(browser, f"{server.url}/#retention?period=week")
    active = api(server, "active", period="week")
    assert [r[1:] for r in table_rows(browser, "active-users")] == [
        [str(b["active"]), str(b["new"]), str(b["returning"])] for b in active["buckets"]]
    retention = api(server, "retention", period="week")
    assert [r[:3] for r in table_rows(browser, "retention")] == [
        [c["start"][:10], str(c["users"]), str(c["retained"][0])] for c in retention["cohorts"]]
    assert_count_axis(browser, "Active users: new and returning")
    lines = csv_lines(browser, "active-users")
    assert lines[0] == "Start (UTC),Active,New,Returning" and len(lines) == len(active["buckets"]) + 1
    assert console_errors(browser) == []
    screenshot(browser, "server-page-users-retention")


def test_a_custom_date_range(server, browser):
    show(browser, f"{server.url}/#retention?period=day")
    since, until = T0 + dt.timedelta(days=7), T0 + dt.timedelta(days=13)
    for name, day in (("since", since), ("until", until)):  # typed as a person would, in the date picker
        field = browser.find_element("css selector", f"input[name={name}]")
        browser.execute_script("arguments[0].value = arguments[1]", field, day.date().isoformat())
    settled(browser, browser.find_element("css selector", "form.bar button.primary").click)
    days = [r[0] for r in table_rows(browser, "active-users")]
    assert days == [(since + dt.timedelta(days=d)).date().isoformat() for d in range(7)]  # until is inclusive
    screenshot(browser, "server-page-date-range")


def test_conversations_view_search_and_filters(server, browser):
    show(browser, f"{server.url}/#conversations")
    summary = api(server, "conversations")
    cards = dict(c.text.split("\n", 1) for c in browser.find_elements("css selector", ".cards .card"))
    assert cards["THREADS"] == f"{summary['threads']:,}"
    assert cards["TURNS P50 / P90"] == f"{summary['turns_p50']} / {summary['turns_p90']}"
    show(browser, f"{server.url}/#conversations?q=refund&only=abandoned")
    found = api(server, "conversation_list", q="refund", only="abandoned")["threads"]
    rows = table_rows(browser, "threads")
    assert [r[0] for r in rows] == [t["thread_id"] for t in found] and rows
    assert all(r[9] == "yes" for r in rows)
    assert len(csv_lines(browser, "threads")) == len(rows) + 1
    screenshot(browser, "server-page-conversations")


def test_feedback_view_shows_values(server, browser):
    show(browser, f"{server.url}/#feedback")
    totals = api(server, "feedback")["totals"]
    cards = dict(c.text.split("\n", 1) for c in browser.find_elements("css selector", ".cards .card"))
    assert (cards["FEEDBACK"], cards["POSITIVE"], cards["NEGATIVE"]) == (
        f"{totals['feedback']:,}", f"{totals['positive']:,}", f"{totals['negative']:,}")
    values = {r[3] for r in table_rows(browser, "recent-feedback")}
    assert values & {"1", "0", "true", "false", "great", "0.25"}  # the values, not just the names
    assert {r[0] for r in table_rows(browser, "by-model")} == {"gpt-4o", "claude-sonnet-4"}
    assert_count_axis(browser, "Feedback per day")  # a few a day: uPlot alone would tick at 0.5
    screenshot(browser, "server-page-feedback")


def test_funnels_view(server, browser):
    show(browser, f"{server.url}/#funnels?steps={','.join(FUNNEL)}&within=7d")
    want = api(server, "funnel", steps=",".join(FUNNEL), within="7d")["steps"]
    assert [r[:2] for r in table_rows(browser, "funnel")] == [[s["event"], str(s["users"])] for s in want]
    assert len(browser.find_elements("css selector", ".funnel .step")) == 3
    screenshot(browser, "server-page-funnels")


def test_topics_view_and_its_threads(server, browser):
    show(browser, f"{server.url}/#topics")
    topics = api(server, "topics")["topics"]
    rows = table_rows(browser, "topics")
    assert [r[2] for r in rows] == [str(t["prompts"]) for t in topics]
    screenshot(browser, "server-page-topics")
    settled(browser, browser.find_element("css selector", ".data-table[data-table='topics'] tbody a").click)
    assert f"topic={topics[0]['topic']}" in browser.current_url
    threads = api(server, "conversation_list", topic=topics[0]["topic"])["threads"]
    assert [r[0] for r in table_rows(browser, "threads")] == [t["thread_id"] for t in threads]


def test_trace_waterfall_has_start_offsets(tmp_path, browser):
    with LocalServer(tmp_path / "trace.sqlite3") as server:
        trace, start = "ef" * 16, dt.datetime(2026, 3, 2, 12, tzinfo=dt.timezone.utc)
        post(server, "publish_events", [
            {"user_id": "u", "event": "Agent run", "timestamp": start.isoformat(), "properties": {
                "$trace_id": trace, "$span_id": "a" * 16, "observation_type": "span", "duration": 4.0}},
            {"user_id": "u", "event": "Tool call", "timestamp": (start + dt.timedelta(seconds=3)).isoformat(),
             "properties": {"$trace_id": trace, "$span_id": "b" * 16, "$parent_span_id": "a" * 16,
                            "observation_type": "span", "duration": 1.0}}])
        show(browser, f"{server.url}/#trace/{trace}")
        offsets = [e.text for e in browser.find_elements("css selector", ".node .offset")]
        assert offsets == ["+0 ms", "+3.00 s"]
        bars = browser.execute_script("return [...document.querySelectorAll('.waterfall .dur')]"
                                      ".map(b => [b.style.left, b.style.width])")
        assert bars[0][0] == "0%" and bars[1][0] == "75%" and "25%" in bars[1][1]  # 3 s into 4 s, 1 s long
        screenshot(browser, "server-page-trace-waterfall")


def test_no_polling_after_a_404(tmp_path, browser):
    with LocalServer(tmp_path / "poll.sqlite3") as server:
        post(server, "publish_events", [{"user_id": "u", "event": "Open app", "properties": {}}])
        browser.get(f"{server.url}/#user/nobody")
        wait_for_text(browser, "Could not load")  # the view failed: no data-ready to wait for
        post(server, "publish_events", [{"user_id": "u", "event": "Open app", "properties": {}}])  # last_id moves
        # each poll asks /api/stats, and re-rendering would ask for the user again
        count = "return performance.getEntriesByType('resource').filter(e => e.name.includes('/api/')).length"
        before = browser.execute_script(count)
        time.sleep(7)  # two poll intervals
        assert browser.execute_script(count) == before
        console_errors(browser)  # the 404, expected

def test_dates_picked_the_wrong_way_round_say_so(tmp_path, browser):
    """Not an empty dashboard that reads as "nothing happened": the server's reason, shown."""
    with LocalServer(tmp_path / "dates.sqlite3") as server:
        post(server, "publish_events", [{"user_id": "u", "event": "Open app", "properties": {}}])
        browser.get(f"{server.url}/#dashboard?since=2026-02-01&until=2026-01-01")
        wait_for_text(browser, "since (2026-02-01) is after until")
        console_errors(browser)  # the 400, expected


EVIL = "<img src=x onerror=\"window.__xss='%s'\">"


def test_user_supplied_text_stays_text_in_every_analytics_view(tmp_path, browser):
    with LocalServer(tmp_path / "evil.sqlite3") as server:
        user, model, name = EVIL % "user", EVIL % "model", "<script>window.__xss='event'</script>"
        when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)
        post(server, "publish_llm_events", [{
            "user_id": user, "prompt": "<svg onload=\"window.__xss='prompt'\"> refund refund", "generation": "g",
            "thread_id": EVIL % "thread", "timestamp": when.isoformat(), "latency": 1,
            "properties": {"model": model, "$trace_id": "9" * 32, "$span_id": "9" * 16, "error.type": "=cmd|x"}}])
        post(server, "publish_events", [
            {"user_id": user, "event": name, "timestamp": when.isoformat(),
             "properties": {"$thread_id": EVIL % "thread", "$feedback": EVIL % "value", "plan": EVIL % "plan"}},
            {"user_id": user, "event": "Score", "timestamp": when.isoformat(), "properties": {
                "observation_type": "score", "name": EVIL % "score", "value": "=1+2", "trace_id": "9" * 32,
                "observation_id": "9" * 16}}])
        views = ["#retention", "#conversations", "#feedback", f"#funnels?steps={name},Generation&breakdown=model",
                 "#topics", "#conversations?q=refund"]
        for fragment in views:
            show(browser, f"{server.url}/{fragment}")
            text = browser.find_element("tag name", "main").text
            assert "window.__xss" in text or fragment == "#retention", fragment  # shown, as text
            for a in browser.find_elements("css selector", "main a"):
                href = a.get_attribute("href") or ""
                assert href.startswith((server.url, "data:text/csv")), (fragment, href)
            assert not browser.find_elements("css selector", "main img, main script, main iframe, main svg"), fragment
            assert browser.execute_script("return window.__xss") is None, fragment
            assert console_errors(browser) == [], fragment
            screenshot(browser, "server-page-xss-" + fragment.strip("#").split("?")[0])
        show(browser, f"{server.url}/#feedback")
        assert_count_axis(browser, "Feedback per day")  # counts of 0 and 1: never a 0.5 tick
        csv = "\n".join(csv_lines(browser, "recent-feedback"))
        assert "'=1+2" in csv  # a spreadsheet would not run it
