"""The price tables an exporter prices LLM events with: custom prices, then genai-prices.

::

    from trubrics_otel.deliver.prices import load_price_table
    from trubrics_otel.translate.cost import price_event

    table = load_price_table(prices={"models": {"acme-ft-1": {"input_per_mtok": 0.3,
                                                              "output_per_mtok": 1.2}}})
    # once at start: reads TRUBRICS_PRICES_FILE if set, logs ONE error if it is broken
    price_event(properties, "gpt-4o-mini-2024-07-18", "openai", table)   # on the export thread

The maintained table is the ``genai-prices`` package (Pydantic's, versioned, updated with
every provider price change; install ``trubrics-otel[cost]``). Importing it costs ~0.13 s
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
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Union

from ..translate.cost import ChainedPrices, CustomPrices, ModelRates, PriceTable, Priced
from ..translate.usage import Usage

logger = logging.getLogger(__name__)

PRICES_FILE_ENV = "TRUBRICS_PRICES_FILE"
PricesArgument = Union[Mapping[str, Any], str, os.PathLike, None]

_MAX_RESOLVED = 4096  # distinct (model, provider) pairs remembered; bounded against junk names
_Resolved = tuple[tuple[str, "str | None"], "ModelRates | None"]
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
    included, so an unknown model costs one dictionary lookup per event.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self._calc_price: Any = None
        self._usage_type: Any = None
        self._snapshot: Any = None
        self.source = "genai-prices"
        self._resolved: dict[tuple[str, str | None], _Resolved | None] = {}

    @property
    def available(self) -> bool:
        """Whether genai-prices imports here (loads it on first call)."""
        self._load()
        return self._calc_price is not None

    def price(self, model: str, provider: str | None, usage: Usage,
              at: datetime | None) -> Priced | None:
        if not self._load():
            return None
        key = (model.lower(), provider.lower() if provider else None)
        if key not in self._resolved:
            self._remember(key, self._resolve(key))
        found = self._resolved[key]
        if found is None:
            return None
        candidate, rates = found
        if rates is not None:  # flat per-token prices: the same arithmetic, ~10x faster
            input_usd, output_usd = rates.cost(usage)
            return Priced(input_usd, output_usd, self.source)
        return self._calc(candidate, usage, at)

    def _resolve(self, key: tuple[str, str | None]) -> _Resolved | None:
        """The (model, provider) genai-prices knows the call by, and its flat rates if it has them."""
        for model_ref, provider_id in _candidates(*key):
            try:
                _, model_info = self._snapshot().find_provider_model(
                    model_ref, None, provider_id, None)
            except LookupError:
                continue
            return (model_ref, provider_id), _flat_rates(model_info)
        return None

    def _calc(self, candidate: tuple[str, str | None], usage: Usage,
              at: datetime | None) -> Priced:
        """genai-prices itself: tiers above a context size, prices that change on a date."""
        model_ref, provider_id = candidate
        counts = {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "cache_read_tokens": usage.cache_read_input_tokens,
            "cache_write_tokens": usage.cache_creation_input_tokens,
            "output_reasoning_tokens": usage.reasoning_tokens,
        }
        if at is not None and at.tzinfo is None:
            at = at.replace(tzinfo=timezone.utc)
        result = self._calc_price(
            self._usage_type(**{name: count for name, count in counts.items() if count}),
            model_ref, provider_id=provider_id, genai_request_timestamp=at)
        return Priced(float(result.input_price), float(result.output_price), self.source)

    def _remember(self, key: tuple[str, str | None], found: _Resolved | None) -> None:
        if len(self._resolved) >= _MAX_RESOLVED:
            self._resolved.clear()
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
                        "Install it with: pip install 'trubrics-otel[cost]'",
                        type(exc).__name__, exc)
                else:
                    self._calc_price = genai_prices.calc_price
                    self._usage_type = genai_prices.Usage
                    self._snapshot = genai_prices.data_snapshot.get_snapshot
                    self.source = f"genai-prices {genai_prices.__version__}"
                self._loaded = True
        return self._calc_price is not None


def _flat_rates(model_info: Any) -> ModelRates | None:
    """The model's prices as :class:`ModelRates` when that arithmetic is exactly genai-prices'.

    That is: one price for all time (no dated changes), no tiers by context size, an input
    price, and none of the units whose count a token usage changes in another way (per-request
    fees, text-only or reasoning-only rates). Other prices ask genai-prices on every call.
    ``tests/test_cost.py`` checks both ways agree on every such model of the table.
    """
    try:
        from genai_prices.types import ModelPrice

        prices = model_info.prices
        if not isinstance(prices, ModelPrice):
            return None
        given = {name: value for name, value in vars(prices).items() if value is not None}
    except Exception:  # a genai-prices whose internals moved: the slow path is still right
        return None
    if "input_mtok" not in given or any(not isinstance(value, Decimal) for value in given.values()):
        return None
    if any(name in _NOT_FLAT or "text" in name or "5m" in name for name in given):
        return None
    return ModelRates(
        input_per_mtok=float(given["input_mtok"]),
        output_per_mtok=float(given.get("output_mtok", 0)),
        cache_read_per_mtok=_float_or_none(given.get("cache_read_mtok")),
        cache_write_per_mtok=_float_or_none(given.get("cache_write_mtok")),
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


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
                     environ: Mapping[str, str] | None = None) -> PriceTable:
    """The table for an exporter: custom prices (if any) first, then genai-prices.

    Call it once at start: it reads and checks the custom prices now (one ERROR log line if
    they are broken; events are still sent, without a cost for those models) and defers the
    maintained table to the first event priced.
    """
    environ = os.environ if environ is None else environ
    custom = load_custom_prices(prices, environ=environ)
    maintained = MaintainedPrices()
    return ChainedPrices((custom, maintained)) if custom else maintained


def load_custom_prices(prices: PricesArgument = None, *,
                       environ: Mapping[str, str] | None = None) -> CustomPrices | None:
    """The custom prices from ``TRUBRICS_PRICES_FILE`` and ``prices=``, or ``None`` if none.

    Never raises: what cannot be read or checked is logged once, as one ERROR line, and left out.
    """
    environ = os.environ if environ is None else environ
    file_name = (environ.get(PRICES_FILE_ENV) or "").strip()
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
