"""The local server's read side: the page, its static files and the JSON API it uses.

::

    api = ReadAPI(store, api_key=None, needs_key=False)
    response = api.handle("/api/events", {"user": "alice", "q": "refund"}, key=None)

=================================  ===============================================================
``GET /``                          the page (``static/index.html``); ``/static/<file>`` its assets
``GET /api/events``                ``?user= event= model= thread= kind= session= trace= q= since=
                                   until= limit= before=``: newest first; the ``X-Next-Before``
                                   header holds the cursor of the next page when there is one
``GET /api/users``                 ``?q= limit= before=``; ``/api/users/<id>``: a profile
``GET /api/sessions``              ``?user= limit= before=``
``GET /api/threads``               ``?user= limit= before=``; ``/api/threads/<id>``: a conversation
                                   with its feedback events and totals
``GET /api/traces/<id>``           one trace as a tree of events
``GET /api/analytics``             ``?since= until= by=hour|day|week user= model= event= by_model=1``
``GET /api/filters``               event names and models seen, for the page's filters
``GET /api/stats``                 counts, the last event id (the page polls it), whether
                                   writes need serve's ``--api-key`` (never the key)
``GET /api/active`` (``retention``  the product analyses (:mod:`.analytics.api` lists their
``funnel feedback conversations``   parameters): ``?since= until= user= model= event=``
``topics``)                         and ``period=``, ``steps= within= breakdown=``
=================================  ===============================================================

Access: on a loopback address anyone local may read. Bound elsewhere, every ``/api/`` read
needs the ``x-api-key`` header to equal the server's ``--api-key``; without one configured,
remote reads are refused (403), since any key would do. The page itself holds no data.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import json
import math
import mimetypes
from collections.abc import Mapping
from importlib import resources
from typing import Any, Callable
from urllib.parse import unquote

from trubrics_otel.server import queries, stats
from trubrics_otel.server.analytics import api as analytics
from trubrics_otel.server.store import Store, parse_time, to_us

_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # no inline script, nothing from elsewhere: injected markup could not run even if it got in
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                                "form-action 'none'; frame-ancestors 'none'"),
}


class BadQuery(ValueError):
    """A query parameter the read API refuses: HTTP 400 with this message as ``detail``."""


MONEY_KEYS = frozenset({"cost_usd", "cost_p50", "cost_p90"})
"""The keys whose numbers are costs in USD, wherever they stand in an answer."""
MONEY_DIGITS = 10
"""Significant digits of a cost in USD in JSON answers: a sum of float prices carries noise
(``0.5791419500000002``) that is no money anyone spent."""


def rounded_money(usd: float) -> float:
    """A cost in USD to :data:`MONEY_DIGITS` significant digits: ``0.1 + 0.2`` is ``0.3``."""
    return float(f"{usd:.{MONEY_DIGITS}g}")


def strict_json(value: Any, indent: int | None = None) -> str:
    """Every JSON answer (read API, ``--json``) is made here: strict JSON, costs as money.

    A sum that overflowed to infinity is ``null`` with ``"<key>_overflow": true`` beside it,
    never ``Infinity`` (which no JSON parser but Python's takes); a float under a
    :data:`MONEY_KEYS` key is :func:`rounded_money`."""
    separators = (",", ":") if indent is None else None
    return json.dumps(_answer(value), ensure_ascii=False, separators=separators, indent=indent,
                      allow_nan=False)


def _answer(value: Any) -> Any:
    """``value`` as :func:`strict_json` writes it (a copy of its objects and arrays)."""
    if isinstance(value, dict):
        answer: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(item, float):
                if not math.isfinite(item):
                    answer[key], answer[f"{key}_overflow"] = None, True
                    continue
                if key in MONEY_KEYS:
                    item = rounded_money(item)
            elif isinstance(item, (dict, list, tuple)):
                item = _answer(item)
            answer[key] = item
        return answer
    if isinstance(value, (list, tuple)):
        return [_answer(item) if isinstance(item, (dict, list, tuple)) else item for item in value]
    return value


__all__ = ["BadQuery", "ReadAPI"]


Result = tuple[int, Any, str, dict[str, str]]
"""(status, body (JSON-able or bytes), content type, headers)."""


class ReadAPI:
    """The routes of the module docstring over one store; :meth:`handle` answers one GET."""

    def __init__(self, store: Store, *, api_key: bytes | None, needs_key: bool) -> None:
        """``needs_key``: reads need ``x-api-key`` equal to ``api_key`` (refused without one).
        Sessions are the ``sessions`` table's, for the timeout the database records (the last
        ``serve`` started sets it): every worker on one database answers the same sessions."""
        self.store = store
        self._api_key = api_key
        self._needs_key = needs_key
        self._routes: dict[str, Callable[..., Result]] = {
            "events": self._events, "users": self._users, "sessions": self._sessions,
            "threads": self._threads, "traces": self._traces, "analytics": self._dashboard,
            "filters": self._filters, "stats": self._counts,
        }
        for name in analytics.ANALYSES:
            self._routes[name] = lambda p, rest, name=name: self._analysis(name, p)

    def handle(self, path: str, params: Mapping[str, str], key: str | None) -> Result:
        """The answer to ``GET path?params`` (``key``: the request's API key): never raises for
        a bad request, which is a 4xx with its reason."""
        if path in ("/", "/index.html"):
            return self._static("index.html")
        if path.startswith("/static/"):
            return self._static(path[len("/static/"):])
        if not path.startswith("/api/"):
            return _json(404, {"detail": "Not Found"})
        if self._needs_key:
            if self._api_key is None:
                return _json(403, {"detail": "reading over the network needs serve --api-key"})
            if not key or not hmac.compare_digest(key.encode("utf-8"), self._api_key):
                return _json(401, {"detail": "Missing or invalid API key (x-api-key header)"})
        name, _, rest = path[len("/api/"):].partition("/")
        route = self._routes.get(name)
        if route is None:
            return _json(404, {"detail": "Not Found"})
        rest = unquote(rest) if rest else None
        # no stored text holds one (PostgreSQL cannot, SQLite's full-text search neither): a
        # 400 naming it on either engine, not a database error
        for what, value in [*params.items(), ("the id in the path", rest or "")]:
            if "\x00" in value:
                return _json(400, {"detail": f"{what} must not contain a NUL character"})
        try:
            return route(params, rest)
        except (BadQuery, stats.StatsError, analytics.AnalyticsError) as exc:
            return _json(400, {"detail": str(exc)})

    # --- routes ----------------------------------------------------------------------------------

    def _events(self, p: Mapping[str, str], rest: str | None) -> Result:
        found = queries.EventFilter(
            user=_text(p, "user"), event=_text(p, "event"), model=_text(p, "model"),
            thread=_text(p, "thread"), kind=_choice(p, "kind", ("event", "llm")),
            q=(_text(p, "q") or "").strip() or None,
            session=_text(p, "session"), trace=_text(p, "trace"), **_window(p))
        with self.store.connection() as c:
            page = queries.event_page(c, found, sessions=self._lookup(c), limit=_limit(p, 100),
                                      before=_cursor(p, numeric=True))
        return _listing(page["events"], page["next"])

    def _users(self, p: Mapping[str, str], rest: str | None) -> Result:
        with self.store.connection() as c:
            if rest is not None:
                profile = queries.user_profile(c, rest, sessions=self._lookup(c))
                return _json(200, profile) if profile else _json(404, {"detail": f"no user {rest!r}"})
            page = queries.user_list(c, limit=_limit(p, 100), q=_text(p, "q"), before=_cursor(p))
        return _listing(page["users"], page["next"])

    def _sessions(self, p: Mapping[str, str], rest: str | None) -> Result:
        user = _text(p, "user")
        with self.store.connection() as c:
            page = queries.session_list(c, user=user, limit=_limit(p, 100), before=_cursor(p))
        return _listing(page["sessions"], page["next"])

    def _threads(self, p: Mapping[str, str], rest: str | None) -> Result:
        with self.store.connection() as c:
            if rest is None:
                page = queries.thread_list(c, user=_text(p, "user"), limit=_limit(p, 100), before=_cursor(p))
                return _listing(page["threads"], page["next"])
            thread = queries.thread_detail(c, rest, sessions=self._lookup(c))
        return _json(200, thread) if thread else _json(404, {"detail": f"no thread {rest!r}"})

    def _traces(self, p: Mapping[str, str], rest: str | None) -> Result:
        if rest is None:
            return _json(404, {"detail": "Not Found"})
        with self.store.connection() as c:
            tree = queries.trace(c, rest)
        return _json(200, tree) if tree else _json(404, {"detail": f"no trace {rest!r}"})

    def _dashboard(self, p: Mapping[str, str], rest: str | None) -> Result:
        """``/api/analytics``: the dashboard's buckets and totals (:mod:`.stats`)."""
        query = stats.StatsQuery(
            **_window(p), by=p.get("by") or "day",
            user=_text(p, "user"), model=_text(p, "model"), event=_text(p, "event"))
        with self.store.connection() as c:
            return _json(200, stats.stats(c, query, by_model=_choice(p, "by_model", ("1", "true", "0", "false"))
                                          in ("1", "true")))

    def _analysis(self, name: str, p: Mapping[str, str]) -> Result:
        """``/api/<analysis>`` (:mod:`.analytics.api`), its time window checked as every route's."""
        _window(p)
        if name == "conversation_list":  # a listing: ?limit= as every listing's
            p = {**p, "limit": str(_limit(p, 100))}
        return _json(200, analytics.answer(self.store, name, p))

    def _filters(self, p: Mapping[str, str], rest: str | None) -> Result:
        with self.store.connection() as c:
            return _json(200, queries.filter_values(c))

    def _counts(self, p: Mapping[str, str], rest: str | None) -> Result:
        """``/api/stats``: what is stored and the last event id (the page polls it); whether
        writes need ``--api-key`` (the page's first-event snippet: on loopback, reads do not)."""
        with self.store.connection() as c:
            timeout_s = self._lookup(c).timeout_us / 1e6
        return _json(200, {**self.store.count(), "session_timeout_s": timeout_s,
                           "writes_need_key": self._api_key is not None})

    # --- helpers ---------------------------------------------------------------------------------

    def _lookup(self, c: Any) -> queries.Sessions:
        return self.store.sessions_lookup(c)

    def _static(self, name: str) -> Result:
        folder = resources.files("trubrics_otel.server").joinpath("static")
        if "/" in name or "\\" in name or name.startswith(".") or not folder.joinpath(name).is_file():
            return _json(404, {"detail": "Not Found"})
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        return 200, folder.joinpath(name).read_bytes(), content_type, dict(_SECURITY_HEADERS)


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Result:
    return status, body, "application/json", {"Cache-Control": "no-store", **(headers or {})}


def _listing(rows: list[Any], next_cursor: str | None) -> Result:
    return _json(200, rows, {"X-Next-Before": next_cursor} if next_cursor else None)


def _text(p: Mapping[str, str], name: str) -> str | None:
    return p.get(name) or None


def _choice(p: Mapping[str, str], name: str, allowed: tuple[str, ...]) -> str | None:
    """A parameter with a few possible values: another is refused, not read as "no filter"."""
    value = p.get(name) or None
    if value is not None and value not in allowed:
        raise BadQuery(f"{name} must be one of {', '.join(allowed)}, got {value[:40]!r}")
    return value


def _limit(p: Mapping[str, str], default: int) -> int:
    text = p.get("limit")
    if not text:
        return default
    try:
        limit = int(text)
    except ValueError:
        limit = 0
    if limit < 1:  # not one row for limit=0: refused, as the CLI's --limit 0 is
        raise BadQuery(f"limit must be a positive integer, got {text[:40]!r}")
    return min(limit, 10_000)


def _cursor(p: Mapping[str, str], numeric: bool = False) -> str | None:
    text = p.get("before")
    if not text:
        return None
    head, sep, tail = text.partition(":")
    if not sep or not _int64(head) or not tail or (numeric and not _int64(tail)) or "\x00" in tail:
        raise BadQuery(f"before must be a cursor from X-Next-Before, got {text[:64]!r}")
    return text


def _int64(text: str) -> bool:
    """ASCII digits (``isdigit`` takes '²') for an integer SQLite can hold."""
    digits = text[1:] if text.startswith("-") else text
    return digits.isascii() and digits.isdigit() and -(2**63) <= int(text) < 2**63


def _window(p: Mapping[str, str]) -> dict[str, int | None]:
    """``since_us`` and ``until_us`` of ``?since= until=``: a window with since after until (that
    nothing can be in) is refused, as the CLI refuses it, not answered as "nothing happened"."""
    since, until = _time_us(p, "since"), _time_us(p, "until")
    if since is not None and until is not None and since > until:
        raise BadQuery(f"since ({p['since']}) is after until ({p['until']}): since is the earlier end, "
                       "e.g. since=2d&until=1d")
    return {"since_us": since, "until_us": until}


def _time_us(p: Mapping[str, str], name: str) -> int | None:
    """A time parameter (ISO 8601 or a duration ago) in microseconds; a bad one names itself."""
    text = p.get(name)
    if not text:
        return None
    try:
        moment: _dt.datetime = parse_time(text)
    except ValueError as exc:
        raise BadQuery(f"{name}: {exc}") from None
    return to_us(moment)
