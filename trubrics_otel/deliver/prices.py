"""The price tables an exporter prices LLM events with: custom prices, then genai-prices.

::

    from trubrics_otel.deliver.prices import load_price_table
    from trubrics_otel.translate.cost import price_event

    table = load_price_table(prices={"models": {"acme-ft-1": {"input_per_mtok": 0.3,
                                                              "output_per_mtok": 1.2}}})
    # once at start: reads TRUBRICS_PRICES_FILE if set, logs ONE error if it is broken
    price_event(properties, "gpt-4o-mini-2024-07-18", "openai", table)   # on the export thread

The maintained table is the ``genai-prices`` package (Pydantic's, versioned, updated with
every provider price change; install ``trubrics-otel[cost]``). Importing it costs ~0.1 s
and pulls in pydantic and httpx2, so :class:`MaintainedPrices` imports it on the first
event it prices, on the export thread: ``import trubrics_otel`` and ``track()`` stay as fast.
Without the extra, one warning is logged and only custom models are priced.

Custom prices (``prices=`` a dict or a JSON file path, and/or the file named by
``TRUBRICS_PRICES_FILE``; entries of ``prices=`` win over the file's) come first, so they
also override the maintained price of a known model (a negotiated discount).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Union

from .. import settings
from ..extras import install_command
from ..translate.cost import ChainedPrices, CustomPrices, ModelRates, Priced, PriceTable
from ..translate.usage import Usage

logger = logging.getLogger("trubrics")

PRICES_FILE_ENV = settings.PRICES_FILE.name
PricesArgument = Union[Mapping[str, Any], str, os.PathLike, None]

_MAX_RESOLVED = 4096  # distinct (model, provider) pairs remembered; bounded against junk names
_Resolved = tuple[tuple[str, "str | None"], Any]  # (model, provider) for genai-prices, its ModelInfo
_new_priced = tuple.__new__  # Priced(...) without NamedTuple's Python-level __new__
_NOT_FLAT = frozenset({"requests_kcount", "output_reasoning_mtok", "input_mchars",
                       "input_text_messages_kcount", "output_citation_mtok"})
_PROVIDER_ALIASES = {"x_ai": "x-ai", "xai": "x-ai", "gcp.gen_ai": "google"}
"""OpenTelemetry ``gen_ai.provider.name`` values genai-prices does not match by itself."""


class MaintainedPrices:
    """genai-prices behind the :class:`~trubrics_otel.translate.cost.PriceTable` interface.

    Model names are matched by genai-prices (dated snapshots such as
    ``gpt-4o-mini-2024-07-18`` find ``gpt-4o-mini``); this class adds what it does not do:
    a ``provider/`` prefix (``openai/gpt-4o``, ``models/gemini-2.5-flash``), provider names it
    does not know (then the model alone decides), and a memo of each name's resolution, misses
    included, so an unknown model costs one dictionary lookup per event. Per-token prices
    (most of the table, tiers and dated changes included) are then computed here from
    genai-prices' rates in force at the event's time (:func:`token_rates`): its own
    ``calc_price`` costs ~75 µs a call, this ~5 µs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._calc_price: Any = None
        self._usage_type: Any = None
        self._snapshot: Any = None
        self.source = "genai-prices"
        self._resolved: dict[tuple[str, str | None], _Resolved | None] = {}
        self._rates: dict[int, tuple[Any, TokenRates | None]] = {}  # by id() of a ModelPrice
        self._fixed: dict[tuple[str, str | None], TokenRates] = {}  # models priced the same at any date

    @property
    def available(self) -> bool:
        """Whether genai-prices imports here (loads it on first call)."""
        self._load()
        return self._calc_price is not None

    def price(self, model: str, provider: str | None, usage: Usage,
              at: datetime | None) -> Priced | None:
        fixed = self._fixed.get((model, provider))  # the names as sent: one lookup, most events
        if fixed is not None:  # most models: one price set whatever the date, worked out once
            return _new_priced(Priced, (*fixed.cost(usage), self.source))
        if not self._load():
            return None
        key = (model.lower(), provider.lower() if provider else None)
        fixed = self._fixed.get(key)
        if fixed is not None:
            self._fix((model, provider), fixed)
            return _new_priced(Priced, (*fixed.cost(usage), self.source))
        if key not in self._resolved:
            self._remember(key, self._resolve(key))
        found = self._resolved[key]
        if found is None:
            return None
        candidate, model_info = found
        at = datetime.now(timezone.utc) if at is None else (
            at if at.tzinfo is not None else at.replace(tzinfo=timezone.utc))
        rates = self._rates_for(model_info.get_prices(at))
        if rates is not None:  # per-token prices: the same arithmetic, ~10x faster
            if not isinstance(model_info.prices, list):  # not dated or conditional: one for all dates
                self._fix(key, rates)
                self._fix((model, provider), rates)
            input_usd, output_usd = rates.cost(usage)
            return Priced(input_usd, output_usd, self.source)
        return self._calc(candidate, usage, at)

    def _resolve(self, key: tuple[str, str | None]) -> _Resolved | None:
        """The (model, provider) genai-prices knows the call by, and its entry for the model."""
        for model_ref, provider_id in _candidates(*key):
            try:
                _, model_info = self._snapshot().find_provider_model(
                    model_ref, None, provider_id, None)
            except LookupError:
                continue
            return (model_ref, provider_id), model_info
        return None

    def _rates_for(self, model_price: Any) -> TokenRates | None:
        """:func:`token_rates` of one of the table's price sets, worked out once."""
        cached = self._rates.get(id(model_price))
        if cached is None or cached[0] is not model_price:
            cached = self._rates[id(model_price)] = (model_price, token_rates(model_price))
        return cached[1]

    def _calc(self, candidate: tuple[str, str | None], usage: Usage,
              at: datetime) -> Priced:
        """genai-prices itself, for the prices :func:`token_rates` does not cover."""
        model_ref, provider_id = candidate
        counts = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
            "output_reasoning_tokens": usage.reasoning_tokens,
        }
        result = self._calc_price(
            self._usage_type(**{name: count for name, count in counts.items() if count}),
            model_ref, provider_id=provider_id, genai_request_timestamp=at)
        return Priced(float(result.input_price), float(result.output_price), self.source)

    def _fix(self, names: tuple[str, str | None], rates: TokenRates) -> None:
        """Remember a model's one price set by these names (as sent, or lower-cased); bounded:
        junk spellings of known models must not grow it without end."""
        if len(self._fixed) >= 2 * _MAX_RESOLVED:
            self._fixed.clear()
        self._fixed[names] = rates

    def _remember(self, key: tuple[str, str | None], found: _Resolved | None) -> None:
        if len(self._resolved) >= _MAX_RESOLVED:
            self._resolved.clear()
            self._fixed.clear()
        self._resolved[key] = found

    def _load(self) -> bool:
        if self._loaded:
            return self._calc_price is not None
        with self._lock:
            if not self._loaded:
                try:
                    import genai_prices
                except Exception as exc:  # ImportError, or a broken install: price custom only
                    logger.warning(
                        "trubrics-otel: the maintained price table is not available (%s: %s); "
                        "LLM events get a cost only for models in your custom prices. "
                        "Install it with: %s", type(exc).__name__, exc, install_command("cost"))
                else:
                    self._calc_price = genai_prices.calc_price
                    self._usage_type = genai_prices.Usage
                    self._snapshot = genai_prices.data_snapshot.get_snapshot
                    self.source = f"genai-prices {genai_prices.__version__}"
                self._loaded = True
        return self._calc_price is not None


@dataclass(frozen=True, slots=True)
class TokenRates:
    """A model's per-token prices by input size: genai-prices' "cliff" tiers, where a call
    with more input tokens than a tier's start pays that tier's rate on ALL its tokens."""

    starts: tuple[int, ...]  # ascending
    rates: tuple[ModelRates, ...]  # rates[0] up to starts[0]; rates[i + 1] above starts[i]

    def cost(self, usage: Usage) -> tuple[float, float]:
        return self.rates[bisect_left(self.starts, usage.input_tokens)].cost(usage)


def token_rates(model_price: Any) -> TokenRates | None:
    """A genai-prices ``ModelPrice`` as :class:`TokenRates`, when that arithmetic is exactly its own.

    That is: an input price, and none of the units whose count a token usage changes in another
    way (per-request fees, text-only or reasoning-only rates); those ask genai-prices every call.
    ``tests/test_cost.py`` checks both ways agree on every price set of the table this covers.
    """
    try:
        from genai_prices.types import TieredPrices

        given = {name: value for name, value in vars(model_price).items() if value is not None}
        if "input_mtok" not in given or any(name in _NOT_FLAT or "text" in name or "5m" in name
                                            for name in given):
            return None
        if any(not isinstance(value, (Decimal, TieredPrices)) for value in given.values()):
            return None
        starts = sorted({tier.start for value in given.values()
                         if isinstance(value, TieredPrices) for tier in value.tiers})
        return TokenRates(tuple(starts), tuple(
            _rates_above(given, bound) for bound in [None, *starts]))
    except Exception:  # a genai-prices whose internals moved: its own path is still right
        return None


def _rates_above(given: Mapping[str, Any], bound: int | None) -> ModelRates:
    """The rates for a call with just over ``bound`` input tokens (``None``: the base rates)."""
    def at(name: str) -> float | None:
        value = given.get(name)
        if value is None or isinstance(value, Decimal):
            return None if value is None else float(value)
        applicable = value.base
        for tier in value.tiers:
            if bound is not None and tier.start <= bound:
                applicable = tier.price
        return float(applicable)

    return ModelRates(input_per_mtok=at("input_mtok") or 0.0,
                      output_per_mtok=at("output_mtok") or 0.0,
                      cache_read_per_mtok=at("cache_read_mtok"),
                      cache_write_per_mtok=at("cache_write_mtok"))


def _candidates(model: str, provider: str | None) -> list[tuple[str, str | None]]:
    """(model, provider) pairs to try, the most specific first."""
    provider = _PROVIDER_ALIASES.get(provider, provider) if provider else None
    pairs: list[tuple[str, str | None]] = [(model, provider)]
    if "/" in model:
        prefix, rest = model.split("/", 1)
        pairs += [(rest, _PROVIDER_ALIASES.get(prefix, prefix)), (rest, provider)]
        model = rest
    pairs.append((model, None))  # the provider is unknown to the table or wrong (a proxy)
    return list(dict.fromkeys(pairs))


def load_price_table(prices: PricesArgument = None, *,
                     prices_file: str | os.PathLike[str] | None = None) -> PriceTable:
    """The table for an exporter: custom prices (if any) first, then genai-prices.

    Call it once at start: it reads and checks the custom prices now (one ERROR log line if
    they are broken; events are still sent, without a cost for those models) and defers the
    maintained table to the first event priced.
    """
    custom = load_custom_prices(prices, prices_file=prices_file)
    maintained = MaintainedPrices()
    return ChainedPrices((custom, maintained)) if custom else maintained


def load_custom_prices(prices: PricesArgument = None, *,
                       prices_file: str | os.PathLike[str] | None = None) -> CustomPrices | None:
    """The custom prices from ``TRUBRICS_PRICES_FILE`` and ``prices=``, or ``None`` if none.

    Never raises: what cannot be read or checked is logged once, as one ERROR line, and left out.
    """
    file_name = str(prices_file if prices_file is not None else settings.read(settings.PRICES_FILE) or "")
    sources: list[tuple[str, object]] = []  # later sources win: prices= over the file
    if file_name:
        sources.append((f"{PRICES_FILE_ENV}={file_name}", file_name))
    if prices is not None:
        sources.append(("prices=" if isinstance(prices, Mapping) else f"prices={prices}", prices))
    documents: list[tuple[str, object]] = []
    problems: list[str] = []
    for origin, given in sources:
        if isinstance(given, Mapping):
            documents.append((origin, given))
            continue
        try:
            documents.append((origin, json.loads(Path(given).read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError) as exc:  # TypeError: neither a dict nor a path
            problems.append(f"{origin}: cannot read it as JSON ({type(exc).__name__}: {exc})")
    merged: dict[str, ModelRates] = {}
    for origin, document in documents:
        table, entry_problems = CustomPrices.parse(document)
        problems += [f"{origin}: {problem}" for problem in entry_problems]
        merged.update(table.rates)
    if problems:
        logger.error("trubrics-otel: custom prices left out, those models get no cost: %s",
                     "; ".join(problems))
    return CustomPrices(merged) if merged else None
