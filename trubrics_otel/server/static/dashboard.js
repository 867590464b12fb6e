"use strict";
// The dashboard view: totals and uPlot charts from /api/analytics (by model for cost, errors
// and latency). Loaded before app.js, whose helpers (el, api, go, filterBar ...) it calls.
// Values reach the page as text only, like everywhere else (see app.js).

const RANGES = { "24h": ["24h", "hour"], "7d": ["7d", "day"], "30d": ["30d", "day"], "90d": ["90d", "week"], all: ["", "day"] };

async function renderDashboard(r) {
  const p = { range: "all", ...r.params };
  const custom = Boolean(p.since || p.until);  // dates picked (UTC, until inclusive) replace the preset range
  const [since, defaultBy] = custom ? ["", "day"] : RANGES[p.range] || RANGES.all;
  const query = new URLSearchParams({ by: p.by || defaultBy, by_model: "1" });
  if (since) query.set("since", since);
  if (p.since) query.set("since", p.since);
  if (p.until) query.set("until", nextDay(p.until));
  for (const f of ["user", "model", "event"]) if (p[f]) query.set(f, p[f]);
  const [data, filters] = await Promise.all([api("/api/analytics?" + query), api("/api/filters")]);
  const bar = filterBar([
    select("range", Object.keys(RANGES).map(k => [k, k === "all" ? "All time" : "Last " + k]), "Range"),
    el("input", { type: "date", name: "since", "aria-label": "since", title: "from (UTC)" }),
    el("input", { type: "date", name: "until", "aria-label": "until", title: "to, inclusive (UTC)" }),
    select("by", ["hour", "day", "week"], "Bucket"),
    el("input", { name: "user", placeholder: "user id", "aria-label": "user" }),
    select("model", filters.models, "All models"),
    select("event", filters.events, "All events"),
  ], { ...p, range: custom ? "" : p.range }, values => go("dashboard", null,
    values.range && values.range !== p.range ? { ...values, since: "", until: "" } : values));  // a preset clears the dates
  const t = data.totals;
  const cards = el("div", { class: "cards", id: "totals" },
    card("All events", num(t.events)), card("LLM calls", num(t.llm_events)), card("Users", num(t.users)),
    card("Tokens in / out", `${num(t.input_tokens)} / ${num(t.output_tokens)}`), card("Cost", usd(t.cost_usd)),
    card("Errors", num(t.errors)), card("Latency p50 / p95", t.latency_p50 == null ? "–" : `${duration(t.latency_p50)} / ${duration(t.latency_p95)}`));
  const xs = data.buckets.map(b => Date.parse(b.start) / 1000);
  const col = (rows, field) => rows.map(b => b[field]);
  const models = Object.entries(data.models || {});
  const charts = el("div", { class: "charts" });
  const specs = [
    ["Events and LLM calls", [["events", col(data.buckets, "events")], ["LLM calls", col(data.buckets, "llm_events")]], true],
    ["Active users", [["users", col(data.buckets, "users")]], true],
    ["Tokens", [["input", col(data.buckets, "input_tokens")], ["output", col(data.buckets, "output_tokens")]], true],
    ["Cost (USD) by model", models.map(([m, rows]) => [m, col(rows, "cost_usd")])],
    ["Errors by model", models.map(([m, rows]) => [m, col(rows, "errors")]), true],
    ["Latency p50 / p95 (s) by model", models.flatMap(([m, rows], i) => [[m + " p50", col(rows, "latency_p50"), false, i], [m + " p95", col(rows, "latency_p95"), true, i]])],
  ];
  const unfiltered = !custom && p.range === "all" && !p.user && !p.model && !p.event;
  const first = unfiltered && !t.events ? welcome(await api("/api/stats")) : null;  // an empty store, not an empty filter
  main.replaceChildren(...[bar, first, cards, charts].filter(Boolean));  // charts size themselves from their container
  for (const [title, series, counts] of specs) charts.append(chart(title, xs, series, counts));
  return [bar, first, cards, charts];
}

// what a first visit (nothing stored yet) needs: how to send something here; the page redraws
// when the first event arrives (poll, app.js). The key is never shown, only whether one is needed
// (writing needs serve's --api-key when it has one, even on loopback where reading does not).
function welcome(stats) {
  const origin = location.origin;
  const key = stats.writes_need_key ? "<serve's --api-key>" : "local-dev-key";
  return el("div", { class: "panel welcome", id: "welcome" },
    el("h3", {}, "Nothing stored yet"),
    el("p", {}, "Send a first event from Python:"),
    el("pre", {}, `from trubrics_otel import Trubrics

trubrics = Trubrics(api_key="${key}", host="${origin}")
trubrics.track(user_id="u1", event="Sign up")
trubrics.close()`),
    el("p", {}, "or point an OpenTelemetry exporter at ", el("code", {}, origin + "/v1/traces"),
      " (OTLP/HTTP). Events appear here as they arrive."));
}

// a time axis; one bucket alone (a first day of use) is drawn a day either side of it: uPlot
// widens a single time to 1000 days (86400 / its 1e-3 "ms" factor), an axis running to years ahead
const TIME_SCALE = { time: true, range: (u, min, max) => u.data[0].length === 1 ? [u.data[0][0] - 86400, u.data[0][0] + 86400] : [min, max] };

const COLORS = ["#4f46e5", "#0891b2", "#d97706", "#16a34a", "#db2777", "#7c3aed", "#64748b"];

// every axis starts at zero (cost and latency are never negative: a baseline above zero would
// exaggerate a change); counts also get whole-number ticks (INTEGER_STEPS, insights.js)
function chart(title, xs, series, counts) {
  const box = el("div", { class: "panel chart", "data-chart": title }, el("h3", {}, title));
  const hasData = series.some(([, values]) => values.some(v => v !== null && v !== 0));
  if (!xs.length || !hasData || typeof uPlot === "undefined") {
    box.append(el("div", { class: "nodata" }, "No data in this range."));
    return box;
  }
  const width = Math.max(320, (main.clientWidth || 1200) / 2 - 50);
  const opts = {
    width, height: 200, legend: { live: false },
    scales: { x: TIME_SCALE, y: { range: (u, min, max) => [0, max > 0 ? max * 1.05 : 1] } },
    series: [{}, ...series.map(([label, , dashed, color], i) => ({
      label, stroke: COLORS[(color ?? i) % COLORS.length], width: 2, dash: dashed ? [6, 4] : undefined, spanGaps: false, points: { show: xs.length < 60 },
    }))],
    // tick labels at full precision: uPlot's default rounds 0.0025 and 0.003 to the same text
    axes: [{}, { size: 80, values: (u, splits) => splits.map(v => v == null ? "" : String(+v.toPrecision(6))) }],
  };
  if (counts) {
    opts.axes[1] = { size: 80, incrs: INTEGER_STEPS, values: (u, splits) => splits.map(v => v == null ? "" : String(Math.round(v))) };
  }
  box.plot = new uPlot(opts, [xs, ...series.map(([, values]) => values)], box);  // the browser tests read its axes
  return box;
}

