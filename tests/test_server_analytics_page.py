"""The analytics page in headless Chromium: dashboard, filters, search, paging, profiles,
threads with feedback, trace trees, and user-supplied text that must stay text."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from browser import browser, console_errors, needs_chromium, screenshot, settled, show  # noqa: F401 (browser: a fixture)

from trubrics_otel.server import LocalServer

pytestmark = needs_chromium

NOW = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
TRACE = "ab" * 16
SPANS = [f"{i:016x}" for i in (1, 2, 3)]
OLD_SESSION_EVENTS = 40


def at(minutes_ago: float) -> str:
    return (NOW - dt.timedelta(minutes=minutes_ago)).isoformat()


def post(server: LocalServer, kind: str, events: list[dict]) -> None:
    for start in range(0, len(events), 100):
        requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, timeout=10,
                      json=events[start:start + 100]).raise_for_status()


def turn(prompt: str, generation: str, minutes_ago: float, model: str, cost: float, tokens: tuple[int, int],
         **properties) -> dict:
    return {"user_id": "erin", "prompt": prompt, "generation": generation, "thread_id": "trip-1",
            "timestamp": at(minutes_ago), "latency": 1.5,
            "properties": {"model": model, "cost_usd": cost, "input_tokens": tokens[0],
                           "output_tokens": tokens[1], **properties}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(tmp_path_factory.mktemp("analytics") / "events.sqlite3") as server:
        old = [{"user_id": "dana", "event": "Page view", "timestamp": at(12 * 24 * 60 - i),
                "properties": {"page": f"/old/{i}"}} for i in range(OLD_SESSION_EVENTS)]
        recent = [{"user_id": "dana", "event": "Search", "timestamp": at(60 - i / 6),
                   "properties": {"query": f"q{i}"}} for i in range(130)]
        feedback = [
            {"user_id": "erin", "event": "Thumbs up", "timestamp": at(28),
             "properties": {"$thread_id": "trip-1", "comment": "great plan", "$feedback": 1}},
            {"user_id": "erin", "event": "Thumbs down", "timestamp": at(27),
             "properties": {"$thread_id": "trip-1", "$feedback": False}},
            {"user_id": "erin", "event": "Chat opened", "timestamp": at(27.5), "properties": {"$thread_id": "trip-1"}},
            {"user_id": "erin", "event": "Agent run", "timestamp": at(30.5),
             "properties": {"$trace_id": TRACE, "$span_id": SPANS[0], "observation_type": "span",
                            "duration": 3.5, "input": "plan a trip"}},
            {"user_id": "erin", "event": "Tool call", "timestamp": at(30.2),
             "properties": {"$trace_id": TRACE, "$span_id": SPANS[2], "$parent_span_id": SPANS[1],
                            "observation_type": "tool", "name": "search_flights", "input": {"to": "LIS"},
                            "output": "3 flights", "duration": 0.4}},
        ]
        post(server, "publish_events", old + recent + feedback)
        post(server, "publish_llm_events", [
            turn("Plan two days in Lisbon", "**Day 1**: Alfama\n\n- walk the hills\n- eat pastéis", 30, "gpt-4o",
                 0.002, (120, 80), **{"$trace_id": TRACE, "$span_id": SPANS[1], "$parent_span_id": SPANS[0]}),
            turn("And after that?", "Then fly to Zanzibar.", 29, "claude-sonnet-4", 0.003, (200, 40)),
            turn("Any visa needed?", "", 26, "claude-sonnet-4", 0.0, (50, 0),
                 **{"error.type": "RateLimitError", "error.message": "429"}),
        ])
        yield server


def main_text(browser) -> str:
    return browser.find_element("tag name", "main").text


def test_dashboard_shows_totals_and_charts_and_filters_by_model(server, browser):
    from selenium.webdriver.support.ui import Select

    show(browser, f"{server.url}/#dashboard")
    totals = browser.find_element("css selector", "#totals")
    cards = dict(c.text.split("\n", 1) for c in totals.find_elements("css selector", ".card"))
    assert cards["ALL EVENTS"] == f"{OLD_SESSION_EVENTS + 130 + 5 + 3:,}"  # product and LLM events
    assert (cards["LLM CALLS"], cards["USERS"], cards["ERRORS"]) == ("3", "2", "1")
    assert cards["COST"] == "$0.0050" and cards["TOKENS IN / OUT"] == "370 / 120"
    titles = [c.get_attribute("data-chart") for c in browser.find_elements("css selector", ".chart")]
    assert titles == ["Events and LLM calls", "Active users", "Tokens", "Cost (USD) by model",
                      "Errors by model", "Latency p50 / p95 (s) by model"]
    assert len(browser.find_elements("css selector", ".chart .uplot")) == 6
    assert "CLAUDE-SONNET-4" in browser.find_element("css selector", "[data-chart='Errors by model']").text.upper()
    screenshot(browser, "server-page-dashboard")

    settled(browser, lambda: Select(browser.find_element("css selector", "select[name=model]"))
            .select_by_visible_text("gpt-4o"))
    cards = dict(c.text.split("\n", 1) for c in browser.find_elements("css selector", "#totals .card"))
    assert (cards["LLM CALLS"], cards["ERRORS"], cards["USERS"]) == ("1", "0", "1")
    assert "model=gpt-4o" in browser.current_url
    assert console_errors(browser) == []  # no script error, nothing the CSP had to block


def test_events_filters_and_search(server, browser):
    from selenium.webdriver.support.ui import Select

    show(browser, f"{server.url}/#events")
    settled(browser, lambda: Select(browser.find_element("css selector", "select[name=kind]")).select_by_value("llm"))
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == 3 and all("erin" in r.text for r in rows)
    assert "Plan two days in Lisbon" in main_text(browser) and "gpt-4o" in main_text(browser)

    show(browser, f"{server.url}/#events")
    browser.find_element("css selector", "input[name=q]").send_keys("zanzibar")
    settled(browser, browser.find_element("css selector", "button.primary").click)
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == 1 and "And after that?" in rows[0].text and "Then fly to Zanzibar." in rows[0].text
    screenshot(browser, "server-page-search")

    show(browser, f"{server.url}/#events")
    browser.find_element("css selector", "input[name=user]").send_keys("erin")
    settled(browser, lambda: Select(browser.find_element("css selector", "select[name=event]"))
            .select_by_visible_text("Thumbs up"))
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == 1 and "Thumbs up" in rows[0].text and "great plan" in rows[0].text


def test_paging_back_to_an_old_session_and_opening_it(server, browser):
    show(browser, f"{server.url}/#events")
    pages = 1
    while "/old/" not in main_text(browser) and pages < 10:  # 50 a page, newest first
        settled(browser, browser.find_element("css selector", "button.older").click)
        pages += 1
    assert pages == 3  # 137 newer events (130 searches, erin's 7) come first
    row = next(r for r in browser.find_elements("css selector", "tbody tr") if "/old/" in r.text)
    settled(browser, row.find_element("css selector", "a[href*='session=']").click)
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == OLD_SESSION_EVENTS and all("Page view" in r.text for r in rows)
    assert not browser.find_elements("css selector", "button.older")
    screenshot(browser, "server-page-old-session")


def test_user_profile(server, browser):
    show(browser, f"{server.url}/#events?user=erin")
    settled(browser, browser.find_element("css selector", "tbody a.link[href='#user/erin']").click)
    profile = browser.find_element("css selector", ".profile[data-user=erin]")
    cards = dict(c.text.split("\n", 1) for c in profile.find_elements("css selector", ".cards .card"))
    assert (cards["LLM CALLS"], cards["THREADS"], cards["ERRORS"], cards["COST"]) == ("3", "1", "1", "$0.0050")
    assert cards["TOKENS IN / OUT"] == "370 / 120"
    text = profile.text
    assert "Plan two days in Lisbon" in text  # the thread's title
    assert "Thumbs up" in text and "Thumbs down" in text and "great plan" in text  # feedback
    assert "Agent run" in text  # the timeline
    screenshot(browser, "server-page-user-profile")


def test_thread_shows_feedback_in_the_conversation_and_totals_in_the_list(server, browser):
    show(browser, f"{server.url}/#thread/trip-1")
    conversation = browser.find_element("css selector", ".conversation[data-thread='trip-1']")
    kinds = [("feedback:" + e.get_attribute("data-feedback")) if e.get_attribute("data-feedback") else "turn"
             for e in conversation.find_elements("css selector", ".turn, .feedback-item")]
    assert kinds == ["turn", "turn", "feedback:Thumbs up", "feedback:Thumbs down", "turn"]  # not "Chat opened"
    assert "Thumbs down = false" in conversation.text and "Thumbs up = 1" in conversation.text  # values shown
    first = conversation.find_element("css selector", ".turn .generation .bubble")
    assert first.find_element("css selector", "strong").text == "Day 1"  # markdown, rendered
    assert [li.text for li in first.find_elements("css selector", "li")] == ["walk the hills", "eat pastéis"]
    assert "370 → 120 tokens" in conversation.text and "$0.0050" in conversation.text
    item = browser.find_element("css selector", ".thread-item.active")
    assert "Thumbs up = 1; Thumbs down = false" in item.text and "370 → 120 tokens" in item.text  # values
    assert "Chat opened" not in item.text and "Agent run" not in item.text  # not feedback
    screenshot(browser, "server-page-thread-feedback")


def test_trace_tree_opened_from_a_turn(server, browser):
    show(browser, f"{server.url}/#thread/trip-1")
    settled(browser, browser.find_element("css selector", ".turn a[href^='#trace/']").click)
    tree = browser.find_element("css selector", f".tree[data-trace='{TRACE}']")
    root = tree.find_element("css selector", f":scope > .node[data-span='{SPANS[0]}']")
    llm = root.find_element("css selector", f":scope > .node[data-span='{SPANS[1]}']")
    tool = llm.find_element("css selector", f":scope > .node[data-span='{SPANS[2]}']")
    assert "Agent run" in root.text and "3.50 s" in root.text and "plan a trip" in root.text
    assert "Plan two days in Lisbon" in llm.text and "gpt-4o" in llm.text
    assert "search_flights" in tool.text and '{"to":"LIS"}' in tool.text and "3 flights" in tool.text
    screenshot(browser, "server-page-trace")


EVIL_USER = "<img src=x onerror=\"window.__xss='user'\">"
EVIL_EVENT = "<script>window.__xss='event'</script>"
EVIL_THREAD = "\"><img src=x onerror=\"window.__xss='thread'\">"
EVIL_PROMPT = "<script>window.__xss='prompt'</script> [click](javascript:window.__xss='prompt-link')"
EVIL_GENERATION = ("[open](javascript:window.__xss='md-link') <img src=x onerror=\"window.__xss='md-img'\"> "
                   "<a href=\"javascript:window.__xss='raw'\">raw link</a> <svg onload=\"window.__xss='svg'\"></svg> "
                   "<iframe src=\"javascript:window.__xss='frame'\"></iframe> **still bold**")
EVIL_TRACE = "cd" * 16


def test_user_supplied_text_stays_text(browser, tmp_path):
    with LocalServer(tmp_path / "evil.sqlite3") as server:
        post(server, "publish_events", [{
            "user_id": EVIL_USER, "event": EVIL_EVENT, "timestamp": at(3),
            "properties": {"note": "<svg onload=\"window.__xss='prop'\">", "$thread_id": EVIL_THREAD, "$feedback": 1,
                           "$trace_id": EVIL_TRACE, "$span_id": "1" * 16, "link": "javascript:window.__xss='p'"},
        }])
        post(server, "publish_llm_events", [{
            "user_id": EVIL_USER, "prompt": EVIL_PROMPT, "generation": EVIL_GENERATION, "thread_id": EVIL_THREAD,
            "timestamp": at(4), "latency": 0.5,
            "properties": {"model": "<b onmouseover=\"window.__xss='model'\">m</b>", "$trace_id": EVIL_TRACE,
                           "$span_id": "2" * 16, "$parent_span_id": "1" * 16},
        }])
        views = {
            "dashboard": "#dashboard", "events": "#events", "threads": "#threads", "users": "#users",
            "sessions": "#sessions", "profile": "#user/" + requests.utils.quote(EVIL_USER, safe=""),
            "trace": "#trace/" + EVIL_TRACE,
        }
        for name, fragment in views.items():
            show(browser, f"{server.url}/{fragment}")
            text = main_text(browser)
            if name not in ("dashboard", "sessions"):
                assert EVIL_USER in text, name  # shown as text
            for a in browser.find_elements("css selector", "main a"):
                href = a.get_attribute("href")
                csv = a.get_attribute("data-csv") and href.startswith("data:text/csv;")  # a table's CSV export
                assert href is None or csv or href.startswith((server.url, "http:", "https:", "mailto:")), (name, href)
            assert not browser.find_elements("css selector", "main img, main script, main iframe, main svg"), name
            assert browser.execute_script("return window.__xss") is None, name
            assert console_errors(browser) == [], name
        show(browser, f"{server.url}/#threads")
        text = main_text(browser)
        assert "<script>window.__xss='prompt'</script>" in text  # the prompt, as text
        assert EVIL_EVENT in text  # the event carries the thread's id: feedback in the conversation, as text
        generation = browser.find_element("css selector", ".generation .bubble")
        assert "still bold" in generation.find_element("css selector", "strong").text  # markdown works
        assert "<img src=x onerror=" in generation.text  # raw HTML in a generation is shown as text
        for a in browser.find_elements("css selector", ".generation .bubble a"):
            a.click()  # nothing to run: DOMPurify dropped the javascript: hrefs
        screenshot(browser, "server-page-xss")
        assert browser.execute_script("return window.__xss") is None
