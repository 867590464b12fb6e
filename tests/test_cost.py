"""What each LLM call cost: provider counting rules, the maintained table, custom prices, bad input.

Every expected figure is worked out by hand from the per-million-token prices genai-prices
0.2.3 (pinned in the test extra) lists for the model on ``AT``; the arithmetic is in the test.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trubrics_otel.deliver.prices import MaintainedPrices, load_price_table
from trubrics_otel.extras import install_command
from trubrics_otel.translate.cost import (
    CustomPrices,
    NoCost,
    Priced,
    cost_properties,
    price_event,
    span_cost,
)
from trubrics_otel.translate.usage import Usage, make_usage, normalise_usage

AT = datetime(2026, 11, 1, tzinfo=timezone.utc)
"""Prices change on known dates: every test prices calls made on this day."""
COST_KEYS = {"cost_usd", "input_cost_usd", "output_cost_usd", "cost_source"}


@pytest.fixture(scope="module")
def table():
    """The exporter's table with no custom prices: genai-prices alone."""
    genai_prices = pytest.importorskip("genai_prices")
    assert genai_prices.__version__ == "0.2.3", "the hand-checked figures are for 0.2.3"
    return load_price_table()


def priced(model, provider, raw, table):
    return cost_properties(model, provider, normalise_usage(provider, raw), table, at=AT)


def test_openai_cached_input_and_reasoning_tokens(table):
    # Chat Completions: prompt_tokens INCLUDES cached_tokens, completion_tokens INCLUDES reasoning.
    chat = {"prompt_tokens": 2000, "completion_tokens": 600, "total_tokens": 2600,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 448}}
    # o3-mini: $1.10 input, $0.55 cached input, $4.40 output per million tokens.
    # input  = (2000 - 1024) * 1.10 + 1024 * 0.55 = 1073.6 + 563.2 = 1636.8 -> $0.0016368
    # output = 600 * 4.40 (reasoning already inside the 600)      = 2640   -> $0.00264
    cost = priced("o3-mini", "openai", chat, table)
    assert cost["input_cost_usd"] == pytest.approx(0.0016368, abs=1e-12)
    assert cost["output_cost_usd"] == pytest.approx(0.00264, abs=1e-12)
    assert cost["cost_usd"] == pytest.approx(0.0042768, abs=1e-12)
    assert cost["cost_source"] == "genai-prices 0.2.3"
    # The Responses API names the same counts differently; same call, same cost.
    responses = {"input_tokens": 2000, "output_tokens": 600,
                 "input_tokens_details": {"cached_tokens": 1024},
                 "output_tokens_details": {"reasoning_tokens": 448}}
    assert normalise_usage("openai", responses) == normalise_usage("openai", chat)
    assert priced("o3-mini", "openai", responses, table) == cost


def test_anthropic_cache_reads_and_writes_are_added_to_input(table):
    # Anthropic's input_tokens EXCLUDES cache reads and writes.
    raw = {"input_tokens": 300, "cache_read_input_tokens": 2000,
           "cache_creation_input_tokens": 1000, "output_tokens": 400}
    assert normalise_usage("anthropic", raw) == Usage(
        input_tokens=3300, output_tokens=400, cache_read_input_tokens=2000,
        cache_creation_input_tokens=1000)
    # claude-haiku-4-5: $1 input, $0.10 cache read, $1.25 cache write (5 min), $5 output.
    # input  = 300 * 1 + 2000 * 0.10 + 1000 * 1.25 = 300 + 200 + 1250 = 1750 -> $0.00175
    # output = 400 * 5                                                = 2000 -> $0.002
    cost = priced("claude-haiku-4-5-20251001", "anthropic", raw, table)
    assert cost["input_cost_usd"] == pytest.approx(0.00175, abs=1e-12)
    assert cost["output_cost_usd"] == pytest.approx(0.002, abs=1e-12)
    assert cost["cost_usd"] == pytest.approx(0.00375, abs=1e-12)


def test_gemini_thoughts_are_billed_as_output_and_cached_content_is_inside_the_prompt(table):
    # prompt_token_count INCLUDES cached_content_token_count; thoughts are SEPARATE from
    # candidates. The REST API's camelCase gives the same usage.
    snake = {"prompt_token_count": 5000, "cached_content_token_count": 4000,
             "candidates_token_count": 200, "thoughts_token_count": 800,
             "total_token_count": 6000}
    camel = {"promptTokenCount": 5000, "cachedContentTokenCount": 4000,
             "candidatesTokenCount": 200, "thoughtsTokenCount": 800, "totalTokenCount": 6000}
    assert normalise_usage("gcp.gemini", camel) == normalise_usage("gcp.gemini", snake)
    # gemini-2.5-flash: $0.30 input, $0.03 cached input, $2.50 output (thinking included).
    # input  = (5000 - 4000) * 0.30 + 4000 * 0.03 = 300 + 120 = 420 -> $0.00042
    # output = (200 + 800) * 2.50                            = 2500 -> $0.0025
    cost = priced("gemini-2.5-flash", "gcp.gemini", snake, table)
    assert cost["input_cost_usd"] == pytest.approx(0.00042, abs=1e-12)
    assert cost["output_cost_usd"] == pytest.approx(0.0025, abs=1e-12)
    assert cost["cost_usd"] == pytest.approx(0.00292, abs=1e-12)


def test_mistral_from_opentelemetry_genai_attributes(table):
    # gen_ai.usage.* as the OTel convention defines them: cache reads are part of the input.
    attributes = {"gen_ai.usage.input_tokens": 1500, "gen_ai.usage.output_tokens": 500,
                  "gen_ai.usage.cache_read.input_tokens": 500}
    # mistral-small-latest: $0.15 input, $0.015 cached input, $0.60 output.
    # input  = 1000 * 0.15 + 500 * 0.015 = 150 + 7.5 = 157.5 -> $0.0001575
    # output = 500 * 0.60                             = 300   -> $0.0003
    cost = priced("mistral-small-latest", "mistral_ai", attributes, table)
    assert cost["input_cost_usd"] == pytest.approx(0.0001575, abs=1e-12)
    assert cost["output_cost_usd"] == pytest.approx(0.0003, abs=1e-12)
    assert cost["cost_usd"] == pytest.approx(0.0004575, abs=1e-12)


@pytest.mark.parametrize("model, provider", [
    ("gpt-4o-mini-2024-07-18", "openai"),     # a dated snapshot
    ("openai/gpt-4o-mini", None),             # LiteLLM / OpenRouter style prefix
    ("gpt-4o-mini", "azure.ai.openai"),       # an OTel provider name
    ("GPT-4o-mini", "some-proxy"),            # a provider the table does not know
])
def test_model_names_as_instrumentations_write_them(table, model, provider):
    # gpt-4o-mini: $0.15 input, $0.60 output: 1000 * 0.15 + 1000 * 0.60 = 750 -> $0.00075
    properties = {"input_tokens": 1000, "output_tokens": 1000}
    assert price_event(properties, model, provider, table, at=AT) is None
    assert properties["cost_usd"] == pytest.approx(0.00075, abs=1e-12)


def test_unknown_model_gets_no_cost_properties_not_zero(table):
    properties = {"input_tokens": 1000, "output_tokens": 10}
    reason = price_event(properties, "acme-internal-llm", "acme", table, at=AT)
    assert "acme-internal-llm" in reason
    assert properties == {"input_tokens": 1000, "output_tokens": 10}
    # and an event with no usage at all gets nothing either
    assert price_event({}, "gpt-4o", "openai", table, at=AT) == "no token counts"


def test_a_cost_the_span_carries_wins(table):
    # OpenLIT's gen_ai.usage.cost, copied into the properties by the encoder
    properties = {"input_tokens": 1000, "output_tokens": 1000,
                  **span_cost({"gen_ai.usage.cost": 0.5, "gen_ai.usage.input_tokens": 1000})}
    assert price_event(properties, "gpt-4o-mini", "openai", table, at=AT) is None
    assert properties["cost_usd"] == 0.5
    assert properties["cost_source"] == "span"
    # OpenInference's split survives as input / output cost
    assert span_cost({"llm.cost.prompt": 0.25, "llm.cost.completion": 0.5}) == {
        "cost_usd": 0.75, "input_cost_usd": 0.25, "output_cost_usd": 0.5}
    # a span cost that is not a cost is ignored, and we price the call ourselves
    assert span_cost({"gen_ai.usage.cost": "0.5", "llm.cost.total": -1.0}) is None
    nonsense = {"input_tokens": 1000, "output_tokens": 1000, "cost_usd": float("nan")}
    assert price_event(nonsense, "gpt-4o-mini", "openai", table, at=AT) is None
    assert nonsense["cost_usd"] == pytest.approx(0.00075, abs=1e-12)


def test_custom_price_file_prices_private_models_and_overrides_the_table(tmp_path, table):
    prices_file = tmp_path / "prices.json"
    prices_file.write_text(json.dumps({"models": {
        "acme-ft-1": {"input_per_mtok": 0.8, "output_per_mtok": 3.2, "cache_read_per_mtok": 0.2},
        "gpt-4o-mini": {"input_per_mtok": 0.1, "output_per_mtok": 0.4},  # a negotiated rate
    }}))
    custom = load_price_table(prices_file=prices_file)
    # acme-ft-1: input = 600 * 0.8 + 400 * 0.2 = 480 + 80 = 560 -> $0.00056
    #            output = 250 * 3.2                    = 800 -> $0.0008
    properties = {"input_tokens": 1000, "cache_read_input_tokens": 400, "output_tokens": 250}
    assert price_event(properties, "acme-ft-1", None, custom, at=AT) is None
    assert properties["input_cost_usd"] == pytest.approx(0.00056, abs=1e-12)
    assert properties["output_cost_usd"] == pytest.approx(0.0008, abs=1e-12)
    assert properties["cost_source"] == "custom"
    # gpt-4o-mini at the custom rate: 1000 * 0.1 + 1000 * 0.4 = 500 -> $0.0005
    overridden = {"input_tokens": 1000, "output_tokens": 1000}
    price_event(overridden, "gpt-4o-mini", "openai", custom, at=AT)
    assert (overridden["cost_usd"], overridden["cost_source"]) == (0.0005, "custom")
    # prices= (a dict) wins over the file for the same model; other file entries stay
    both = load_price_table({"models": {"acme-ft-1": {"input_per_mtok": 1, "output_per_mtok": 1}}},
                            prices_file=prices_file)
    event = {"input_tokens": 1000, "output_tokens": 1000}
    price_event(event, "acme-ft-1", None, both, at=AT)
    assert event["cost_usd"] == 0.002
    assert "gpt-4o-mini" in both.tables[0]
    # prices= may also be the file's path
    by_path = {"input_tokens": 1000, "output_tokens": 0}
    price_event(by_path, "acme-ft-1", None, load_price_table(str(prices_file)), at=AT)
    assert by_path["cost_usd"] == 0.0008  # 1000 * 0.8 per million


def test_broken_price_file_logs_one_error_and_events_keep_flowing(tmp_path, caplog, table):
    broken = tmp_path / "prices.json"
    broken.write_text('{"models": {"acme-ft-1": {"input_per_mtok": 0.8,}}}')  # trailing comma
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        loaded = load_price_table(prices_file=broken)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and str(broken) in errors[0].getMessage()
    custom_model = {"input_tokens": 10, "output_tokens": 10}
    assert price_event(custom_model, "acme-ft-1", None, loaded, at=AT) is not None
    assert "cost_usd" not in custom_model  # sent without a cost...
    known = {"input_tokens": 1000, "output_tokens": 1000}
    assert price_event(known, "gpt-4o-mini", "openai", loaded, at=AT) is None  # ...others priced
    # one bad entry is left out, with its reason; the good ones are kept
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="trubrics"):
        partly = load_price_table({"models": {
            "good": {"input_per_mtok": 1, "output_per_mtok": 2},
            "negative": {"input_per_mtok": -1, "output_per_mtok": 2},
            "typo": {"input_per_mtoken": 1, "output_per_mtok": 2}}})
    assert len(caplog.records) == 1
    assert "'negative'" in caplog.text and "'typo'" in caplog.text and "'good'" not in caplog.text
    assert "good" in partly.tables[0] and "negative" not in partly.tables[0]


@pytest.mark.parametrize("raw, reason", [
    ({"prompt_tokens": -5, "completion_tokens": 10}, "input_tokens is negative"),
    ({"prompt_tokens": 10**12, "completion_tokens": 10}, "input_tokens is absurd"),
    ({"prompt_tokens": float("nan"), "completion_tokens": 10}, "not a whole number"),
    ({"prompt_tokens": "1200", "completion_tokens": 10}, "not a number (str)"),
    ({"prompt_tokens": True, "completion_tokens": 10}, "not a number (bool)"),
    ({"prompt_tokens": 10, "completion_tokens": 10,
      "prompt_tokens_details": {"cached_tokens": 50}}, "cache tokens exceed input_tokens"),
    ({"prompt_tokens": 10, "completion_tokens": 10,
      "completion_tokens_details": {"reasoning_tokens": 50}}, "reasoning_tokens exceed"),
    ({"input_tokens": 10, "cache_read_input_tokens": -3, "output_tokens": 1}, "negative"),
    ({"total_tokens": 10}, "no token counts"),
    (None, "no usage"),
])
def test_bad_counts_give_no_cost_and_a_reason(table, raw, reason):
    usage = normalise_usage("openai", raw)
    assert isinstance(usage, NoCost) and reason in usage.reason
    assert cost_properties("gpt-4o", "openai", usage, table, at=AT) == usage


def test_bad_counts_already_in_event_properties_add_nothing(table):
    properties = {"input_tokens": -1, "output_tokens": 10**10}
    assert "negative" in price_event(properties, "gpt-4o", "openai", table, at=AT)
    assert properties == {"input_tokens": -1, "output_tokens": 10**10}


def test_a_failing_table_never_raises_into_the_caller():
    class Exploding:
        def price(self, model, provider, usage, at):
            raise RuntimeError("boom")

    properties = {"input_tokens": 1, "output_tokens": 1}
    reason = price_event(properties, "gpt-4o", "openai", Exploding(), at=AT)
    assert "boom" in reason and "cost_usd" not in properties


def test_without_the_cost_extra_one_warning_and_custom_prices_still_work(monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # what `import` sees when absent
    loaded = load_price_table({"models": {"acme-ft-1": {"input_per_mtok": 2,
                                                        "output_per_mtok": 4}}})
    with caplog.at_level(logging.WARNING, logger="trubrics"):
        for _ in range(3):
            assert price_event({"input_tokens": 5, "output_tokens": 5}, "gpt-4o", "openai",
                               loaded, at=AT) is not None
        custom = {"input_tokens": 1000, "output_tokens": 1000}
        assert price_event(custom, "acme-ft-1", None, loaded, at=AT) is None
    assert len(caplog.records) == 1 and install_command("cost") in caplog.text
    assert custom["cost_usd"] == 0.006  # 1000 * 2 + 1000 * 4 = 6000 per million
    assert not MaintainedPrices().available


def test_the_table_is_imported_on_first_use_not_at_import_or_start(table):
    script = (
        "import sys\n"
        "import trubrics_otel\n"
        "from trubrics_otel.deliver.prices import load_price_table\n"
        "from trubrics_otel.translate.cost import price_event\n"
        "loaded = load_price_table()\n"
        "assert 'genai_prices' not in sys.modules and 'pydantic' not in sys.modules\n"
        "event = {'input_tokens': 1000, 'output_tokens': 1000}\n"
        "price_event(event, 'gpt-4o-mini', 'openai', loaded)\n"
        "assert 'genai_prices' in sys.modules, event\n"
        "print(event['cost_source'])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "genai-prices 0.2.3"


def test_custom_prices_parse_rejects_a_document_of_the_wrong_shape():
    table, problems = CustomPrices.parse(["acme-ft-1", 1.0])
    assert len(table) == 0 and problems == ['expected an object {"models": {"<model>": {...}}}']


@pytest.mark.parametrize("input_tokens", [12_345, 250_000, 1_500_000])  # below, above tiers
def test_own_arithmetic_agrees_with_genai_prices_on_every_model_it_covers(table, input_tokens):
    """MaintainedPrices prices per-token models itself (10x faster): never a different figure.

    Prices on AT, for models whose prices change on a date too."""
    from genai_prices import Usage as GenaiUsage
    from genai_prices.data_snapshot import get_snapshot

    from trubrics_otel.deliver.prices import token_rates

    counts = dict(input_tokens=input_tokens, output_tokens=6_789,
                  cache_read=input_tokens // 3, cache_write=input_tokens // 10, reasoning=2_000)
    ours_usage = Usage(counts["input_tokens"], counts["output_tokens"], counts["cache_read"],
                       counts["cache_write"], counts["reasoning"])
    theirs_usage = GenaiUsage(input_tokens=counts["input_tokens"],
                              output_tokens=counts["output_tokens"],
                              cache_read_tokens=counts["cache_read"],
                              cache_write_tokens=counts["cache_write"],
                              output_reasoning_tokens=counts["reasoning"])
    covered = tiered = 0
    for provider in get_snapshot().providers:
        for model in provider.models:
            rates = token_rates(model.get_prices(AT))
            if rates is None:
                continue
            covered += 1
            tiered += bool(rates.starts)
            theirs = model.calc_price(theirs_usage, provider, genai_request_timestamp=AT)
            ours = rates.cost(ours_usage)
            assert ours == pytest.approx((float(theirs.input_price), float(theirs.output_price)),
                                         rel=1e-12, abs=1e-12), (provider.id, model.id)
    assert covered > 2000 and tiered > 50  # most of the table, tiered models included


_junk = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(),
                  st.text(max_size=5), st.lists(st.integers(), max_size=2))
_usage_keys = st.sampled_from([
    "prompt_tokens", "completion_tokens", "input_tokens", "output_tokens",
    "cache_read_input_tokens", "cache_creation_input_tokens", "prompt_token_count",
    "candidates_token_count", "thoughts_token_count", "cached_content_token_count",
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "prompt_tokens_details"])


@given(provider=st.sampled_from([None, "openai", "anthropic", "gcp.gemini", "acme"]),
       raw=st.one_of(_junk, st.dictionaries(_usage_keys, st.one_of(_junk, st.dictionaries(
           st.sampled_from(["cached_tokens", "reasoning_tokens"]), _junk)), max_size=6)))
@settings(max_examples=300, deadline=None)
def test_any_usage_gives_a_plausible_cost_or_a_reason_never_an_exception(table, provider, raw):
    usage = normalise_usage(provider, raw)
    result = cost_properties("gpt-4o-mini", provider, usage, table, at=AT)
    if isinstance(result, NoCost):
        assert result.reason
    else:
        assert set(result) == COST_KEYS
        assert 0 <= result["input_cost_usd"] <= result["cost_usd"] < 1e6


def test_a_model_whose_price_changed_on_a_date_is_priced_by_each_calls_date():
    """Prices that never change are worked out once per model; a model with dated price
    changes must still be priced at each call's own date, whatever was priced before."""
    genai_prices = pytest.importorskip("genai_prices")
    snapshot = genai_prices.data_snapshot.get_snapshot()
    dated = [(provider.id, model.id, model.prices[-1].constraint.start_date)
             for provider in snapshot.providers for model in provider.models
             if isinstance(model.prices, list) and model.prices[-1].constraint is not None
             and hasattr(model.prices[-1].constraint, "start_date")]
    assert dated, "the table has no model with a dated price change any more"
    table = MaintainedPrices()
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    checked = 0
    for provider, model, changed in dated[:40]:
        before = datetime(changed.year, changed.month, changed.day, tzinfo=timezone.utc) - timedelta(days=2)
        after = before + timedelta(days=4)
        for at in (after, before, after, before):  # alternate: nothing cached may carry over
            try:
                expected = genai_prices.calc_price(
                    genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000), model,
                    provider_id=provider, genai_request_timestamp=at)
            except LookupError:  # an id genai-prices itself does not match by name
                break
            priced = table.price(model, provider, usage, at)
            assert priced is not None, (provider, model)
            checked += 1
            assert (round(priced.input_usd, 9), round(priced.output_usd, 9)) == \
                (round(float(expected.input_price), 9), round(float(expected.output_price), 9)), (provider, model, at)
    assert checked >= 20


class _Answers:
    """A price table that answers one cost, whatever the call."""

    def __init__(self, input_usd: float, output_usd: float) -> None:
        self.answer = Priced(input_usd, output_usd, "test")

    def price(self, model, provider, usage, at):
        return self.answer


@pytest.mark.parametrize("input_usd, output_usd", [
    (float("nan"), 0.1), (0.1, float("inf")), (-0.5, 0.1), (0.1, 1e9),
])
def test_an_implausible_cost_from_a_table_is_no_cost(input_usd, output_usd):
    found = cost_properties("m", None, make_usage(10, 5), _Answers(input_usd, output_usd))
    assert isinstance(found, NoCost) and "implausible" in found.reason
    assert cost_properties("m", None, make_usage(10, 5), _Answers(0.25, 0.5))["cost_usd"] == 0.75


def test_endless_spellings_of_a_known_model_keep_the_price_memo_bounded_and_priced(monkeypatch):
    """A hostile sender writes a known model in ever new letter cases: each is priced as the
    model, and what the table remembers of the names stays within its bound."""
    pytest.importorskip("genai_prices")
    from trubrics_otel.deliver import prices

    monkeypatch.setattr(prices, "_MAX_RESOLVED", 8)
    table = MaintainedPrices()
    usage = Usage(input_tokens=1000, output_tokens=1000)
    expected = table.price("gpt-4o-mini", "openai", usage, AT)
    for i in range(200):
        spelling = "".join(c.upper() if i >> n & 1 else c for n, c in enumerate("gpt-4o-mini"))
        assert table.price(spelling, "openai", usage, AT) == expected
        assert table.price("gpt-4o-mini", "openai", usage, AT) == expected
        assert len(table._fixed) <= 2 * 8


def test_costs_are_rounded_to_the_same_float_as_round_gives():
    """cost_properties rounds without ``round(x, 10)`` when it can: bit for bit the same
    float, for prices as tables give them, costs next to a tie, zero of either sign, large ones."""
    import math
    import random
    import struct

    from trubrics_otel.translate.cost import _rounded

    rng = random.Random(5)
    costs = [rng.randint(0, 300_000) * rng.choice((0.075, 0.15, 0.6, 1.1, 2.5, 3, 4.4, 15, 75)) / 1e6
             for _ in range(100_000)]
    costs += [rng.random() * 10 ** rng.uniform(-12, 5) for _ in range(50_000)]
    for _ in range(20_000):  # a half of the last digit kept, and the floats either side of it
        tie = (rng.randint(0, 10**15) + 0.5) / 1e10
        costs += [tie, math.nextafter(tie, 0), math.nextafter(tie, 1)]
    costs += [0.0, -0.0, 5e-324, 0.5e-10, 2.5e-10, 99_999.99999999999, 100_000.0]
    costs += [(rng.randint(0, 10**18) + 0.5) / 1e10 for _ in range(10_000)]  # past any call's cost
    assert [struct.pack("<d", _rounded(cost)) for cost in costs] == [struct.pack("<d", round(cost, 10)) for cost in costs]
