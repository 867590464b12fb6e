"""The local server's page in a real headless Chromium, after the quickstart's chat app ran."""

from __future__ import annotations

import pytest
import requests
from browser import ARTIFACTS, browser, needs_chromium, show, wait_for_text  # noqa: F401 (browser: a fixture)
from conftest import load_quickstart

from trubrics_otel.server import LocalServer

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(tmp_path_factory.mktemp("page") / "events.sqlite3") as server:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TRUBRICS_SPOOL", str(tmp_path_factory.mktemp("spool")))  # never ~/.cache
            load_quickstart().run_chat_app(server.url)
        yield server


def test_thread_is_shown_as_a_conversation(server, browser):
    browser.get(f"{server.url}/#thread=recipes-1")
    text = wait_for_text(browser, "Use Greek yoghurt stirred in off the heat.")
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "server-page-thread.png"))

    conversation = browser.find_element("css selector", ".conversation")
    assert conversation.get_attribute("data-thread") == "recipes-1"
    turns = conversation.find_elements("css selector", ".turn")
    assert [t.find_element("css selector", ".prompt .bubble").text for t in turns] == [
        "Suggest a quick vegetarian dinner.",
        "What if I have no coconut milk?",
        "What if I have no coconut milk?",
        "And a side dish?",
    ]
    generations = [t.find_element("css selector", ".generation") for t in turns]
    assert all(g.is_displayed() for g in generations)
    assert "Chickpea curry" in generations[0].text
    assert "gpt-4o" in generations[0].text and "2.30 s" in generations[0].text
    assert "38 → 15 tokens" in generations[0].text
    assert "failed" in generations[1].get_attribute("class")
    assert "RateLimitError" in generations[1].text
    # the other thread is listed, not shown
    assert "How do I export my invoices?" in text
    assert "Go to Billing" not in text


def test_clicking_a_thread_opens_it(server, browser):
    show(browser, f"{server.url}/#threads")  # rendered: not the previous view's list, about to be replaced
    wait_for_text(browser, "How do I export my invoices?")
    item = next(i for i in browser.find_elements("css selector", ".thread-item")
                if "How do I export my invoices?" in i.text)
    item.click()
    wait_for_text(browser, "Go to Billing → Invoices and press Export CSV.")
    assert browser.find_element("css selector", ".conversation").get_attribute("data-thread") == "support-1"


def test_events_users_and_sessions_views(server, browser):
    browser.get(f"{server.url}/#events")
    text = wait_for_text(browser, "Thumbs up")
    assert "Sign up" in text and "bob" in text
    assert "And a side dish?" in text and "gpt-4o" in text  # LLM rows show the prompt and model
    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "server-page-events.png"))

    browser.get(f"{server.url}/#events?user=bob")
    wait_for_text(browser, "Sign up")
    rows = browser.find_elements("css selector", "tbody tr")
    assert len(rows) == 1 and "Sign up" in rows[0].text and "bob" in rows[0].text

    browser.get(f"{server.url}/#sessions")
    wait_for_text(browser, "alice")
    users = [r.find_elements("css selector", "td")[1].text for r in browser.find_elements("css selector", "tbody tr")]
    assert sorted(users) == ["alice", "alice", "bob"]
    browser.save_screenshot(str(ARTIFACTS / "server-page-sessions.png"))

    browser.get(f"{server.url}/#users")
    text = wait_for_text(browser, "bob")
    assert "alice" in text


def test_new_events_appear_without_reloading(browser, tmp_path):
    with LocalServer(tmp_path / "live.sqlite3") as server:
        browser.get(f"{server.url}/#threads")
        wait_for_text(browser, "No threads yet")
        requests.post(f"{server.url}/publish_llm_events", headers={"x-api-key": "k"}, timeout=10, json=[{
            "user_id": "carol", "prompt": "Is this page live?", "generation": "It polls for new events.",
            "thread_id": "live-1", "latency": 0.3, "properties": {},
        }]).raise_for_status()
        text = wait_for_text(browser, "Is this page live?", timeout=20)  # the newest thread, opened
        assert "It polls for new events." in text


def test_a_thread_whose_first_call_failed_is_listed_by_its_first_prompt(browser, tmp_path):
    def turn(minute: int, prompt: str, error: str | None = None) -> dict:
        return {"user_id": "dora", "prompt": prompt, "generation": "" if error else "42", "error": error,
                "timestamp": f"2026-03-02T10:0{minute}:00+00:00", "properties": {"$thread_id": "t-fail"}}

    with LocalServer(tmp_path / "events.sqlite3") as fresh:
        requests.post(f"{fresh.url}/publish_llm_events", headers={"x-api-key": "k"}, timeout=10,
                      json=[turn(0, "", "InternalServerError"), turn(1, "What is my balance?")]).raise_for_status()
        show(browser, f"{fresh.url}/#threads")
        wait_for_text(browser, "What is my balance?")
        titles = [i.find_element("css selector", ".title").text
                  for i in browser.find_elements("css selector", ".thread-item")]
        assert titles == ["What is my balance?"]  # not "t-fail", the thread id shown for want of one


def test_an_empty_store_shows_how_to_send_a_first_event_and_then_the_event(browser, tmp_path):
    """A first visit, nothing stored: the dashboard shows a snippet for this server (no "/" for a
    latency nobody measured), and the event sent by pasting that snippet replaces it unprompted."""
    from selenium.webdriver.support.ui import WebDriverWait

    with LocalServer(tmp_path / "first.sqlite3") as server:
        browser.get(f"{server.url}/")
        text = wait_for_text(browser, "Nothing stored yet")
        assert "LATENCY P50 / P95\n–" in browser.find_element("id", "totals").text  # labels in CSS capitals
        snippet = browser.find_element("css selector", "#welcome pre").text
        assert f'host="{server.url}"' in snippet and f"{server.url}/v1/traces" in text
        show(browser, f"{server.url}/#conversations")  # every card says something, even with nothing
        cards = {c.text.split("\n")[0]: c.text.split("\n")[1:] for c in browser.find_elements("css selector", ".card")}
        assert cards["DURATION P50"] == ["–"] and cards["ABANDONED"] == ["0"], cards
        show(browser, f"{server.url}/#feedback")
        assert "()" not in browser.find_element("tag name", "main").text
        show(browser, f"{server.url}/#funnels")
        assert "Events seen: none yet" in browser.find_element("tag name", "main").text
        show(browser, f"{server.url}/")
        exec(snippet, {})  # noqa: S102 - what a newcomer pastes
        WebDriverWait(browser, 20).until(lambda d: not d.find_elements("id", "welcome"))
        assert browser.find_element("id", "totals").text.split("\n")[:2] == ["ALL EVENTS", "1"]


def test_the_first_event_snippet_of_a_server_with_a_key_names_no_key_it_would_refuse(browser, tmp_path):
    """``serve --api-key`` on loopback: reading needs no key, writing needs that one, so the
    snippet asks for it (never shows it) instead of a ``local-dev-key`` the server refuses."""
    with LocalServer(tmp_path / "keyed.sqlite3", api_key="team-key-1") as server:
        browser.get(f"{server.url}/")
        wait_for_text(browser, "Nothing stored yet")
        snippet = browser.find_element("css selector", "#welcome pre").text
        assert "<serve's --api-key>" in snippet and "local-dev-key" not in snippet, snippet
        assert "team-key-1" not in browser.page_source
