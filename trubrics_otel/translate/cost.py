"""What an LLM call cost, from its model, provider and usage and a price table. Pure.

::

    from trubrics_otel.translate.cost import price_event

    reason = price_event(event["properties"], model, provider, table, at=event_time)
    # properties now carry cost_usd, input_cost_usd, output_cost_usd and cost_source,
    # or nothing (and ``reason`` says why): never 0 for a model nobody priced.

``table`` is any :class:`PriceTable`: :class:`CustomPrices` (the app's own, per million
tokens), the maintained genai-prices table (:mod:`trubrics_otel.deliver.prices`, which loads
it lazily), or both in a :class:`ChainedPrices`. This module opens no file, starts no thread
and reads no clock: the event's time comes in as ``at`` (prices change on known dates).

A cost the span already carries wins: :func:`span_cost` reads OpenLIT's ``gen_ai.usage.cost``,
LiteLLM's ``gen_ai.cost.total_cost`` / ``llm.response.cost`` and OpenInference's
``llm.cost.*``; an event whose properties already hold ``cost_usd`` keeps it, marked
``cost_source: "span"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from .. import semconv as sc
from .usage import NO_TOKEN_COUNTS, NoCost, Usage, normalise_usage, usage_from_properties

__all__ = [
    "ChainedPrices",
    "CustomPrices",
    "ModelRates",
    "NoCost",
    "PriceTable",
    "Priced",
    "Usage",
    "cost_properties",
    "normalise_usage",
    "price_event",
    "span_cost",
]

MAX_CALL_COST_USD = 100_000.0
"""A single call said to cost more than this is a unit bug (micro-dollars, cents), not a bill."""

_PER = 1_000_000  # prices are per million tokens, as every provider publishes them
_DIGITS = 10  # 1e-10 USD: below any real price of one token, above float noise


class Priced(NamedTuple):
    """A table's answer: the input and output cost in USD, and which table said so."""

    input_usd: float
    output_usd: float
    source: str


class PriceTable(Protocol):
    """Anything that can price a call; ``None`` means it does not know the model."""

    def price(self, model: str, provider: str | None, usage: Usage,
              at: datetime | None) -> Priced | None: ...


@dataclass(frozen=True, slots=True)
class ModelRates:
    """USD per million tokens; a cache rate left out bills those tokens as ordinary input."""

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None

    def cost(self, usage: Usage) -> tuple[float, float]:
        """(input USD, output USD): cached tokens at their rate, the rest of the input at the input rate."""
        cache_read_rate = self.cache_read_per_mtok
        if cache_read_rate is None:  # tested here, not by a call: once per priced event
            cache_read_rate = self.input_per_mtok
        cache_write_rate = self.cache_write_per_mtok
        if cache_write_rate is None:
            cache_write_rate = self.input_per_mtok
        input_tokens, output_tokens, cache_read, cache_creation, _ = usage  # one read, not five
        input_usd = ((input_tokens - cache_read - cache_creation) * self.input_per_mtok
                     + cache_read * cache_read_rate + cache_creation * cache_write_rate) / _PER
        return input_usd, output_tokens * self.output_per_mtok / _PER


class CustomPrices:
    """The app's own prices (private or fine-tuned models), by model name, case-insensitive.

    A name also matches after a ``provider/`` prefix (``openai/my-ft`` finds ``my-ft``).
    Build it from a document with :meth:`parse`; the schema is in the README ("Cost")::

        {"models": {"acme-ft-1": {"input_per_mtok": 0.3, "output_per_mtok": 1.2,
                                  "cache_read_per_mtok": 0.03}}}
    """

    source = "custom"

    def __init__(self, rates: Mapping[str, ModelRates]) -> None:
        self._rates = {name.lower(): rate for name, rate in rates.items()}

    @property
    def rates(self) -> Mapping[str, ModelRates]:
        """The rates by lower-cased model name."""
        return dict(self._rates)

    def __len__(self) -> int:
        return len(self._rates)

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self._find(model) is not None

    def price(self, model: str, provider: str | None, usage: Usage,
              at: datetime | None) -> Priced | None:
        rates = self._find(model)
        if rates is None:
            return None
        input_usd, output_usd = rates.cost(usage)
        return Priced(input_usd, output_usd, self.source)

    def _find(self, model: str) -> ModelRates | None:
        name = model.lower()
        found = self._rates.get(name)
        if found is None and "/" in name:
            found = self._rates.get(name.split("/", 1)[1])
        return found

    @classmethod
    def parse(cls, document: object) -> tuple[CustomPrices, list[str]]:
        """The table from a decoded JSON document, and one line per entry it had to leave out."""
        models = document.get("models") if isinstance(document, Mapping) else None
        if not isinstance(models, Mapping):
            return cls({}), ['expected an object {"models": {"<model>": {...}}}']
        rates: dict[str, ModelRates] = {}
        problems: list[str] = []
        for name, entry in models.items():
            parsed = _parse_rates(entry)
            if isinstance(parsed, str):
                problems.append(f"{name!r}: {parsed}")
            else:
                rates[str(name)] = parsed
        return cls(rates), problems


class ChainedPrices:
    """Ask each table in turn; the first that knows the model prices the call."""

    def __init__(self, tables: Iterable[PriceTable]) -> None:
        self.tables = tuple(tables)

    def price(self, model: str, provider: str | None, usage: Usage,
              at: datetime | None) -> Priced | None:
        for table in self.tables:
            priced = table.price(model, provider, usage, at)
            if priced is not None:
                return priced
        return None


def cost_properties(
    model: object,
    provider: str | None,
    usage: Usage | NoCost | None,
    table: PriceTable | None,
    *,
    at: datetime | None = None,
) -> dict[str, Any] | NoCost:
    """``cost_usd``, ``input_cost_usd``, ``output_cost_usd`` and ``cost_source``, or why not.

    Never raises: a table that fails is a :class:`NoCost` like an unknown model.
    """
    if isinstance(usage, NoCost):
        return usage
    if usage is None:
        return NoCost("no usage")
    name = model.strip() if isinstance(model, str) else ""
    if not name:
        return NoCost("no model")
    if table is None:
        return NoCost("no price table")
    try:
        priced = table.price(name, provider if isinstance(provider, str) else None, usage, at)
    except Exception as exc:
        return NoCost(f"price table failed on {model!r}: {type(exc).__name__}: {exc}")
    if priced is None:
        return NoCost(f"model {model!r} is not in the price table")
    input_usd, output_usd, source = priced
    input_usd, output_usd = float(input_usd), float(output_usd)
    # _plausible for floats: NaN fails both comparisons, infinities the bound
    if not (0 <= input_usd <= MAX_CALL_COST_USD and 0 <= output_usd <= MAX_CALL_COST_USD):
        return NoCost(f"price table gave an implausible cost for {model!r}")
    return {
        sc.PROP_COST_USD: _rounded(input_usd + output_usd),
        sc.PROP_INPUT_COST_USD: _rounded(input_usd),
        sc.PROP_OUTPUT_COST_USD: _rounded(output_usd),
        sc.PROP_COST_SOURCE: source,
    }


_SCALE = 10.0**_DIGITS
_EXACT_BELOW = 2.0**52  # below, a double's spacing is at most 1/2, and 1/2 a multiple of it


def _rounded(usd: float) -> float:
    """``round(usd, _DIGITS)``, the same float, in ~60% of its time unless the cost is a tie.
    Why: ``round`` with digits writes the decimal digits out and reads them back (255 ns,
    ~3,400 instructions, against 150 ns and ~2,800), three times per priced event.

    ``usd * 1e10`` is within half a spacing of the exact product; with the spacing at most 1/2
    and 1/2 on its grid, a product computed short of a half is exactly short of it, so its
    nearest integer is the exact product's; that integer divided by 1e10 (two exact doubles:
    IEEE division rounds correctly) is the double nearest the decimal ``round`` reads back.
    Zero (of either sign), a half and larger costs: ``round`` itself."""
    scaled = usd * _SCALE
    if 0 < scaled < _EXACT_BELOW:
        whole = round(scaled)
        if -0.5 < scaled - whole < 0.5:
            return whole / _SCALE
    return round(usd, _DIGITS)


def price_event(
    properties: dict[str, Any],
    model: object,
    provider: str | None,
    table: PriceTable | None,
    *,
    at: datetime | None = None,
) -> str | None:
    """Add the cost properties to an LLM event's ``properties`` in place; the reason if none.

    The call the exporter makes for every LLM event, after the encoder has put the
    normalised token counts (``input_tokens``, ``output_tokens``, ``cache_read_input_tokens``,
    ``cache_creation_input_tokens``, ``reasoning_tokens``) and any span cost (``cost_usd``,
    from :func:`span_cost`) into the properties.
    """
    carried = properties.get(sc.PROP_COST_USD)
    if carried is not None:
        if _plausible(carried):
            properties.setdefault(sc.PROP_COST_SOURCE, "span")
            return None
        for name in (sc.PROP_COST_USD, sc.PROP_INPUT_COST_USD, sc.PROP_OUTPUT_COST_USD):
            properties.pop(name, None)  # a nonsense cost is dropped, then we price it ourselves
    if properties.get(sc.PROP_INPUT_TOKENS) is None and properties.get(sc.PROP_OUTPUT_TOKENS) is None:
        return NO_TOKEN_COUNTS  # most tracked LLM events: what make_usage would say, sooner
    result = cost_properties(model, provider, usage_from_properties(properties), table, at=at)
    if isinstance(result, NoCost):
        return result.reason
    properties.update(result)
    return None


def span_cost(attributes: Mapping[str, Any]) -> dict[str, float] | None:
    """The cost an instrumentation already put on the span, as cost properties, or ``None``."""
    if _COST_ATTRIBUTES.isdisjoint(attributes):  # most spans: one pass over the keys
        return None
    total = _first_plausible(attributes, sc.GEN_AI_USAGE_COST, sc.GEN_AI_COST_TOTAL,
                             sc.LLM_COST_TOTAL, sc.LLM_RESPONSE_COST, sc.OPERATION_COST)
    prompt = _first_plausible(attributes, sc.LLM_COST_PROMPT)
    completion = _first_plausible(attributes, sc.LLM_COST_COMPLETION)
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    if total is None or (total == 0 and _counted_tokens(attributes)):
        return None  # 0 for tokens used: the instrumentation had no price (OpenLIT offline)
    found = {sc.PROP_COST_USD: total}
    if prompt is not None and completion is not None:
        found[sc.PROP_INPUT_COST_USD] = prompt
        found[sc.PROP_OUTPUT_COST_USD] = completion
    return found


_COST_ATTRIBUTES = frozenset({sc.GEN_AI_USAGE_COST, sc.GEN_AI_COST_TOTAL, sc.LLM_COST_TOTAL, sc.LLM_RESPONSE_COST,
                              sc.OPERATION_COST, sc.LLM_COST_PROMPT, sc.LLM_COST_COMPLETION})


def _counted_tokens(attributes: Mapping[str, Any]) -> bool:
    return any(isinstance(attributes.get(name), int) and attributes[name] > 0
               for name in (sc.GEN_AI_USAGE_INPUT_TOKENS, sc.GEN_AI_USAGE_OUTPUT_TOKENS))


def _parse_rates(entry: object) -> ModelRates | str:
    if not isinstance(entry, Mapping):
        return "expected an object of per-million-token prices"
    known = {"input_per_mtok", "output_per_mtok", "cache_read_per_mtok", "cache_write_per_mtok"}
    unknown = sorted(set(map(str, entry)) - known)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(known))})"
    values: dict[str, float | None] = {}
    for key in sorted(known):
        value = entry.get(key)
        required = key in ("input_per_mtok", "output_per_mtok")
        if value is None:
            if required:
                return f"{key} is required"
            values[key] = None
        elif isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not 0 <= value <= MAX_CALL_COST_USD:
            return f"{key} must be a number of USD per million tokens, got {value!r}"
        else:
            values[key] = float(value)
    return ModelRates(**values)  # type: ignore[arg-type]


def _first_plausible(attributes: Mapping[str, Any], *names: str) -> float | None:
    for name in names:
        value = attributes.get(name)
        if _plausible(value):
            return float(value)
    return None


def _plausible(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= MAX_CALL_COST_USD)
