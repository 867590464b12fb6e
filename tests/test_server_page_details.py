"""What an analyst reads off the page, in headless Chromium: a tiny cost is not "$0.0000", a
score's value is on the trace, "1 turn", every table exports CSV, and every dashboard axis
starts at zero (counts with whole-number ticks)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import unquote

import pytest
import requests
from browser import browser, console_errors, needs_chromium, screenshot, settled, show  # noqa: F401 (browser: a fixture)

from trubrics_otel.server import LocalServer

pytestmark = needs_chromium

DAY = dt.datetime.now(dt.timezone.utc).replace(hour=12, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)
TRACE, ROOT, GEN = "cd" * 16, "1" * 16, "2" * 16
EVIL = "<img src=x onerror=\"window.__xss='score'\">"


def at(hours: float) -> str:
    return (DAY + dt.timedelta(hours=hours)).isoformat()


def post(server: LocalServer, kind: str, events: list[dict]) -> None:
    requests.post(f"{server.url}/{kind}", headers={"x-api-key": "k"}, timeout=10, json=events).raise_for_status()


def llm(thread: str, hours: float, cost: float, tokens: tuple[int, int], **properties) -> dict:
    return {"user_id": "ana", "prompt": f"question in {thread}", "generation": "an answer", "thread_id": thread,
            "timestamp": at(hours), "latency": 1.0, "properties": {
                "model": "gpt-4o", "cost_usd": cost, "input_tokens": tokens[0], "output_tokens": tokens[1], **properties}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LocalServer(tmp_path_factory.mktemp("details") / "events.sqlite3") as server:
        post(server, "publish_llm_events", [  # two days, tokens never near zero: an auto axis would not start at 0
            llm("tiny", -24, 3.25e-05, (400, 450), **{"$trace_id": TRACE, "$span_id": GEN, "$parent_span_id": ROOT}),
            llm("big", 0, 0.012, (420, 430)), llm("big", 0.1, 0.013, (410, 440))])
        post(server, "publish_events", [
            {"user_id": "ana", "event": "Sign up", "timestamp": at(-25), "properties": {"plan": "pro"}},
            {"user_id": "bo", "event": "Sign up", "timestamp": at(-25), "properties": {"plan": "free"}},
            {"user_id": "ana", "event": "chat", "timestamp": at(-24.01), "properties": {
                "$trace_id": TRACE, "$span_id": ROOT, "observation_type": "trace", "duration": 2.0, "$thread_id": "tiny"}},
            *({"user_id": "ana", "event": "Score", "timestamp": at(-23.99), "properties": {
                "$trace_id": TRACE, "$span_id": span, "$parent_span_id": ROOT, "observation_type": "score",
                "name": name, "value": value, "trace_id": TRACE, "$thread_id": "tiny"}}
              for span, name, value in (("3" * 16, "helpfulness", 0.8), ("4" * 16, "tone", "great"),
                                        ("5" * 16, "evil", EVIL)))])
        yield server


def main_text(browser) -> str:
    return browser.find_element("tag name", "main").text


def test_a_tiny_cost_is_shown_not_rounded_to_zero(server, browser):
    show(browser, f"{server.url}/#thread/tiny")
    text = main_text(browser)
    assert "$0.000033" in text and "$0.0000 " not in text and "$0.0000\n" not in text
    assert "1 turn ·" in text  # not "1 turns"
    assert browser.find_element("id", "stats").text == "6 product events · 3 LLM events · 2 users"
    show(browser, f"{server.url}/#conversations")
    rows = {r[0]: r for r in rows_of(browser, "threads")}
    assert rows["tiny"][7] == "0.000033" and rows["big"][7] == "0.0250"
    headers = [th.text for th in browser.find_elements("css selector", ".data-table[data-table='threads'] th")]
    assert headers[-2:] == ["POSITIVE", "NEGATIVE"]  # words, not emoji a font may lack
    cards = dict(c.text.split("\n", 1) for c in browser.find_elements("css selector", ".cards .card"))
    assert cards["TIME TO FIRST TOKEN"] == "–"


def test_the_trace_shows_score_values(server, browser):
    show(browser, f"{server.url}/#trace/{TRACE}")
    values = {n.get_attribute("data-span"): n.find_element("css selector", ":scope > .head .score-value").text
              for n in browser.find_elements("css selector", ".node") if n.find_elements(
                  "css selector", ":scope > .head .score-value")}
    assert values == {"3" * 16: "= 0.8", "4" * 16: "= great", "5" * 16: "= " + EVIL}  # a value is text
    assert not browser.find_elements("css selector", "main img") and browser.execute_script("return window.__xss") is None
    screenshot(browser, "server-page-trace-scores")


def rows_of(browser, name: str) -> list[list[str]]:
    return [[td.text for td in tr.find_elements("css selector", "td")]
            for tr in browser.find_elements("css selector", f".data-table[data-table='{name}'] tbody tr")]


def csv_of(browser, name: str) -> list[str]:
    href = browser.find_element("css selector", f".data-table[data-table='{name}'] a[data-csv]").get_attribute("href")
    return unquote(href.split(",", 1)[1]).strip().split("\r\n")


VIEWS = ["#events", "#sessions", "#users", "#user/ana", "#retention", "#conversations", "#feedback", "#topics",
         "#funnels?steps=Sign%20up,Generation"]


def test_every_table_exports_csv(server, browser):
    for view in VIEWS:
        show(browser, f"{server.url}/{view}")
        tables = browser.find_elements("css selector", "main table:not(.u-legend)")
        assert tables, view
        for table in tables:
            if not table.find_elements("css selector", "tbody tr"):
                continue
            box = table.find_elements("xpath", "ancestor::div[contains(@class, 'data-table')]")
            assert box and box[0].find_elements("css selector", "a[data-csv]"), (view, table.text[:80])
        assert console_errors(browser) == [], view
    show(browser, f"{server.url}/#events")
    lines = csv_of(browser, "events")
    assert lines[0].startswith("Time (UTC),User,Kind,Event,Model,Prompt,Generation")
    assert len(lines) == 1 + len(rows_of(browser, "events"))
    assert any(line.startswith(at(0)[:19]) and "question in big" in line for line in lines)  # ISO times, raw text


def test_dashboard_axes_start_at_zero_and_counts_tick_whole(server, browser):
    show(browser, f"{server.url}/#dashboard?by=day")
    axes = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('[data-chart]')].filter(c => c.plot)"
        ".map(c => [c.dataset.chart, [c.plot.scales.y.min, c.plot.axes[1]._splits]]))")
    assert {"Tokens", "Events and LLM calls", "Cost (USD) by model"} <= set(axes), axes
    for title, (y_min, ticks) in axes.items():
        assert y_min == 0, (title, y_min)
    for title in ("Tokens", "Events and LLM calls", "Active users", "Errors by model"):
        if title in axes:
            assert all(float(t).is_integer() for t in axes[title][1]), (title, axes[title][1])
    screenshot(browser, "server-page-dashboard-axes")


def test_a_single_bucket_is_charted_around_its_day_not_over_years(server, browser):
    # bo's one event: one bucket, as on a first day of use (uPlot alone spans such an axis over years)
    for view, charts in (("dashboard?by=day&user=bo", ("Events and LLM calls", "Active users")),
                         ("retention?period=week&user=bo", ("Active users: new and returning",))):
        show(browser, f"{server.url}/#{view}")
        spans = browser.execute_script(
            "return Object.fromEntries([...document.querySelectorAll('[data-chart]')].filter(c => c.plot)"
            ".map(c => [c.dataset.chart, [c.plot.data[0].length, c.plot.scales.x.min, c.plot.scales.x.max]]))")
        for title in charts:
            points, x_min, x_max = spans[title]
            assert points == 1, (view, title, spans[title])
            assert 0 < x_max - x_min <= 8 * 86400, (view, title, (x_max - x_min) / 86400)  # days, not years


def test_monthly_retention_is_monthly(server, browser):
    show(browser, f"{server.url}/#retention?period=month")
    cohorts = requests.get(f"{server.url}/api/retention", params={"period": "month"}, timeout=10).json()["cohorts"]
    assert [r[:2] for r in rows_of(browser, "retention")] == [[c["start"][:10], str(c["users"])] for c in cohorts]
    assert all(c["start"][8:10] == "01" for c in cohorts)  # month cohorts, not the weeks of the period picker's "week"


def test_a_funnel_broken_down_by_a_property(server, browser):
    show(browser, f"{server.url}/#funnels?steps=Sign%20up,Generation&breakdown=property:plan")
    assert rows_of(browser, "breakdown") == [["free", "1", "0"], ["pro", "1", "1"]]
    assert browser.find_element("css selector", "input[name=breakdown]").get_attribute("value") == "property:plan"


def test_the_dashboard_takes_a_custom_date_range(server, browser):
    from selenium.webdriver.support.select import Select

    show(browser, f"{server.url}/#dashboard")
    yesterday = (DAY - dt.timedelta(days=1)).date().isoformat()
    for name in ("since", "until"):  # one day, picked as a person would
        field = browser.find_element("css selector", f"input[name={name}]")
        browser.execute_script("arguments[0].value = arguments[1]", field, yesterday)
    settled(browser, browser.find_element("css selector", "form.bar button.primary").click)
    cards = dict(c.text.split("\n", 1) for c in browser.find_elements("css selector", "#totals .card"))
    assert cards["LLM CALLS"] == "1" and cards["COST"] == "$0.000033"  # the "tiny" turn alone
    assert f"since={yesterday}" in browser.current_url
    settled(browser, lambda: Select(browser.find_element("css selector", "select[name=range]")).select_by_value("7d"))
    cards = dict(c.text.split("\n", 1) for c in browser.find_elements("css selector", "#totals .card"))
    assert cards["LLM CALLS"] == "3" and "since=" not in browser.current_url  # a preset replaces the dates


def test_events_between_two_times(server, browser):
    show(browser, f"{server.url}/#events")
    for name, value in (("since", at(-30)), ("until", at(-12))):  # yesterday's events only
        browser.find_element("css selector", f"input[name={name}]").send_keys(value)
    settled(browser, browser.find_element("css selector", "form.bar button.primary").click)
    times = [line.split(",", 1)[0] for line in csv_of(browser, "events")[1:]]
    assert times and all(at(-30) <= t < at(-12) for t in times), times


def test_the_thread_list_shows_feedback_values(server, browser):
    """Each thread's feedback with its values (``tone = great``), not only how many there were."""
    threads = {t["thread_id"]: t for t in requests.get(f"{server.url}/api/threads", timeout=10).json()}
    assert threads["tiny"]["feedback"] == {"evil": 1, "helpfulness": 1, "tone": 1}  # kept as it was
    assert [(f["name"], f["value"], f["label"]) for f in threads["tiny"]["feedback_values"]] == [
        ("helpfulness", 0.8, "0.8"), ("tone", None, "great"), ("evil", None, EVIL)]
    assert threads["big"]["feedback_values"] == []
    show(browser, f"{server.url}/#threads")
    items = {i.find_element("css selector", ".title").text: i.text
             for i in browser.find_elements("css selector", ".thread-item")}
    assert f"helpfulness = 0.8; tone = great; evil = {EVIL}" in items["question in tiny"], items
    assert "=" not in items["question in big"]
    assert not browser.find_elements("css selector", "main img") and browser.execute_script("return window.__xss") is None
    show(browser, f"{server.url}/#user/ana")
    rows = {r[0]: r for r in rows_of(browser, "threads")}
    assert rows["tiny"][4].startswith("helpfulness = 0.8; tone = great"), rows
