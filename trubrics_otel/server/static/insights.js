"use strict";
// The product analytics views: Users & retention, Conversations, Feedback, Funnels, Topics.
// Loaded before app.js, whose helpers (el, api, go, link, filterBar, select, table, card ...) they
// call at render time. Values enter the page as text only (el), like everywhere else; each table
// has a CSV export (a data: link, cells that could start a spreadsheet formula are quoted).

const INSIGHT_FILTERS = ["since", "until", "user", "model", "event"];

function insightQuery(p, extra) {
  const query = new URLSearchParams();
  for (const f of INSIGHT_FILTERS) if (p[f]) query.set(f, f === "until" ? nextDay(p[f]) : p[f]);
  for (const [k, v] of Object.entries(extra || {})) if (v !== undefined && v !== null && v !== "") query.set(k, v);
  return query;
}

// a date picked as "until" includes that day: the API's until is exclusive
function nextDay(date) {
  const day = new Date(date + "T00:00:00Z");
  return isNaN(day) ? date : new Date(day.getTime() + 86400000).toISOString();
}

function rangeFields(filters, withEvent) {
  return [
    el("input", { type: "date", name: "since", "aria-label": "since", title: "from (UTC)" }),
    el("input", { type: "date", name: "until", "aria-label": "until", title: "to, inclusive (UTC)" }),
    el("input", { name: "user", placeholder: "user id", "aria-label": "user" }),
    select("model", filters.models, "All models"),
    withEvent === false ? null : select("event", filters.events, "All events"),
  ];
}

function csvCell(value) {
  let text = value === null || value === undefined ? "" : String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = "'" + text;  // no formula when opened in a spreadsheet
  return /[",\n\r]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
}

function csvLink(name, headers, rows) {
  const csv = [headers, ...rows].map(r => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
  return el("a", { class: "link csv", download: name + ".csv", "data-csv": name,
    href: "data:text/csv;charset=utf-8," + encodeURIComponent(csv) }, "CSV ↓");
}

// a table with its CSV export; rows are plain values (cells shown as text), links added by `cells`
function dataTable(name, headers, rows, empty, cells) {
  return el("div", { class: "data-table", "data-table": name },
    el("div", { class: "section" }, name.replace(/-/g, " "), " ", rows.length ? csvLink(name, headers, rows) : null),
    table(headers, rows.map((r, i) => cells ? cells(r, i) : r), empty || "Nothing in this range."));
}

const INTEGER_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 2e5, 5e5, 1e6, 1e7];

// counts over time: the axis starts at zero and its ticks are whole numbers
function countChart(title, starts, series) {
  const box = el("div", { class: "panel chart", "data-chart": title }, el("h3", {}, title));
  const xs = starts.map(s => Date.parse(s) / 1000);
  if (!xs.length || typeof uPlot === "undefined") { box.append(el("div", { class: "nodata" }, "No data in this range.")); return box; }
  const width = Math.max(320, (main.clientWidth || 1200) / 2 - 50);
  box.plot = new uPlot({  // kept on the element: the browser tests read its scale and ticks
    width, height: 200, legend: { live: false }, scales: { x: TIME_SCALE, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
    series: [{}, ...series.map(([label], i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2, points: { show: xs.length < 60 } }))],
    axes: [{}, { size: 60, incrs: INTEGER_STEPS, values: (u, splits) => splits.map(v => v == null ? "" : String(Math.round(v))) }],
  }, [xs, ...series.map(([, values]) => values)], box);
  return box;
}

const pct = x => x === null || x === undefined ? "" : (100 * x).toFixed(1) + "%";
const pctAfter = x => x === null || x === undefined ? "" : ` (${pct(x)})`;  // no "()" for a rate of nothing
const day = iso => iso ? iso.slice(0, 10) : "";

async function renderRetention(r) {
  const p = { period: "week", ...r.params };
  const [filters, active, retention] = await Promise.all([api("/api/filters"),
    api("/api/active?" + insightQuery(p, { period: p.period })),
    api("/api/retention?" + insightQuery(p, { period: p.period }))]);
  const bar = filterBar([select("period", ["day", "week", "month"], "Period"), ...rangeFields(filters)], p,
    values => go("retention", null, values));
  const b = active.buckets;
  const width = Math.max(0, ...retention.cohorts.map(c => c.retained.length));
  return [bar,
    el("div", { class: "charts" }, countChart("Active users: new and returning", b.map(x => x.start),
      [["active", b.map(x => x.active)], ["new", b.map(x => x.new)], ["returning", b.map(x => x.returning)]])),
    dataTable("active-users", ["Start (UTC)", "Active", "New", "Returning"], b.map(x => [day(x.start), x.active, x.new, x.returning])),
    dataTable("stickiness", ["Month", "Days", "Mean DAU", "MAU", "DAU/MAU"],
      active.stickiness.map(m => [m.month.slice(0, 7), m.days, m.dau_avg.toFixed(1), m.mau, pct(m.stickiness)])),
    dataTable("retention", ["Cohort (UTC)", "Users", ...Array.from({ length: width }, (_, k) => `+${k}`)],
      retention.cohorts.map(c => [day(c.start), c.users, ...c.retained])),
  ];
}

async function renderConversations(r) {
  const p = r.params;
  const [filters, summary, list] = await Promise.all([api("/api/filters"),
    api("/api/conversations?" + insightQuery(p)),
    api("/api/conversation_list?" + insightQuery(p, { q: p.q, only: p.only, topic: p.topic }))]);
  const bar = filterBar([el("input", { type: "search", name: "q", placeholder: "Words in a prompt", "aria-label": "search threads" }),
    ...rangeFields(filters, false), select("only", [["abandoned", "abandoned"], ["failed", "with errors"]], "All threads"),
    p.topic ? el("input", { type: "hidden", name: "topic" }) : null], p, values => go("conversations", null, values));
  const s = summary;
  const rows = list.threads.map(t => [t.thread_id, t.title || "", t.user_id, t.model || "", t.turns, day(t.start),
    t.duration_s.toFixed(1), dollars(t.cost_usd), t.errors, t.abandoned ? "yes" : "", t.positive, t.negative]);
  return [bar, p.topic ? el("div", { class: "bar" }, el("span", { class: "chip" }, "topic ", p.topic),
    el("a", { class: "link", href: "#conversations" }, "clear")) : null,
    el("div", { class: "cards" }, card("Threads", num(s.threads)), card("Turns p50 / p90", `${s.turns_p50 ?? "–"} / ${s.turns_p90 ?? "–"}`),
      card("Cost p50 / p90", `${usd(s.cost_p50)} / ${usd(s.cost_p90)}`), card("Duration p50", duration(s.duration_p50_s) || "–"),
      card("Time to first token", duration(s.ttft_mean_s) || "–"),
      card("Abandoned", num(s.abandoned) + pctAfter(s.abandonment_rate)),
      card("Errors", num(s.errors)), card("Users", num(s.users))),
    dataTable("threads", ["Thread", "First prompt", "User", "Model", "Turns", "Start", "Duration s", "Cost $", "Errors", "Abandoned", "Positive", "Negative"],
      rows, "No thread matches.", row => [el("td", {}, threadLink(row[0])), ...row.slice(1, 2), el("td", {}, userLink(row[2])), ...row.slice(3)]),
    dataTable("per-user", ["User", "Threads", "Turns", "Cost $", "Abandoned", "Errors"],
      s.per_user.map(u => [u.user_id, u.threads, u.turns, dollars(u.cost_usd), u.abandoned, u.errors]),
      null, row => [el("td", {}, userLink(row[0])), ...row.slice(1)]),
  ];
}

async function renderFeedback(r) {
  const p = r.params;
  const [filters, f] = await Promise.all([api("/api/filters"), api("/api/feedback?" + insightQuery(p))]);
  const bar = filterBar(rangeFields(filters), p, values => go("feedback", null, values));
  const t = f.totals;
  const group = (name, key, rows) => dataTable(name, [key, "Feedback", "Positive", "Negative", "Mean value"],
    rows.map(g => [g[key.toLowerCase()], g.feedback, g.positive, g.negative, g.mean_value ?? ""]));
  return [bar,
    el("div", { class: "cards" }, card("Feedback", num(t.feedback)), card("Positive", num(t.positive)), card("Negative", num(t.negative)),
      card("Threads with feedback", `${num(t.threads_with_feedback)} / ${num(t.threads)}${pctAfter(t.thread_feedback_rate)}`, true),
      card("Turns with feedback", `${num(t.turns_with_feedback)} / ${num(t.llm_turns)}${pctAfter(t.turn_feedback_rate)}`, true)),
    el("div", { class: "charts" }, countChart("Feedback per day", f.by_day.map(d => d.day),
      [["positive", f.by_day.map(d => d.positive)], ["negative", f.by_day.map(d => d.negative)]])),
    group("by-model", "Model", f.by_model), group("by-assistant", "Assistant", f.by_assistant), group("by-name", "Name", f.by_name),
    dataTable("recent-feedback", ["Time", "User", "Name", "Value", "Source", "Thread", "Model"],
      f.recent.map(x => [x.timestamp, x.user_id, x.name || x.event, x.label, x.source, x.thread_id || "", x.model || ""]),
      "No feedback yet: scores, events with a $feedback property, or serve --feedback-event names.",
      (row, i) => [when(row[0]), el("td", {}, userLink(row[1])), row[2],
        el("td", {}, el("span", { class: "pill" + (f.recent[i].sentiment < 0 ? " neg" : "") }, row[3])),
        row[4], el("td", {}, threadLink(row[5])), row[6]]),
  ];
}

async function renderFunnels(r) {
  const p = { within: "7d", ...r.params };
  const filters = await api("/api/filters");
  const bar = filterBar([el("input", { name: "steps", placeholder: "Step 1,Step 2,Step 3", "aria-label": "steps", class: "wide" }),
    el("input", { name: "within", placeholder: "7d", "aria-label": "within", size: 5 }),
    el("input", { name: "breakdown", placeholder: "by: model or property:NAME", "aria-label": "breakdown", list: "breakdowns" }),
    el("datalist", { id: "breakdowns" }, el("option", { value: "model" })),
    ...rangeFields(filters, false)], p, values => go("funnels", null, values));
  const hint = el("div", { class: "sub" }, "Events seen: ", filters.events.join(", ") || "none yet");
  if (!p.steps) return [bar, el("div", { class: "panel empty" }, "Name two or more steps (event names, comma-separated)."), hint];
  const f = await api("/api/funnel?" + insightQuery(p, { steps: p.steps, within: p.within, breakdown: p.breakdown }));
  const top = Math.max(1, f.steps[0].users);
  const bars = el("div", { class: "panel funnel" }, f.steps.map(s => el("div", { class: "step", "data-step": s.event },
    el("span", { class: "name" }, s.event), el("span", { class: "fill", "data-width": Math.round(100 * s.users / top) }),
    el("span", { class: "count" }, `${num(s.users)} · ${pct(s.conversion)}`))));
  for (const fill of bars.querySelectorAll(".fill")) fill.style.width = Math.max(1, Number(fill.dataset.width)) * 3 + "px";
  return [bar, bars,
    dataTable("funnel", ["Step", "Users", "Conversion", "From previous"], f.steps.map(s => [s.event, s.users, pct(s.conversion), pct(s.from_previous)])),
    f.breakdown ? dataTable("breakdown", ["Value", ...f.steps.map(s => s.event)], f.breakdown.map(b => [b.value, ...b.steps])) : null, hint];
}

async function renderTopics(r) {
  const p = r.params;
  const [filters, t] = await Promise.all([api("/api/filters"), api("/api/topics?" + insightQuery(p))]);
  const bar = filterBar(rangeFields(filters), p, values => go("topics", null, values));
  if (t.notice) return [bar, el("div", { class: "panel empty notice" }, t.notice)];  // without the [topics] extra
  return [bar, dataTable("topics", ["Topic", "Top terms", "Prompts", "Users", "Errors", "Error rate", "Negative feedback", "Rephrased", "Retried"],
    t.topics.map(x => [x.label, x.terms.join(", "), x.prompts, x.users, x.errors, pct(x.error_rate), x.negative_feedback, x.rephrases, x.retries]),
    "No prompts yet.", (row, i) => [el("td", {}, el("a", { class: "link", href: link("conversations", null, { topic: t.topics[i].topic }) }, row[0])), ...row.slice(1)])];
}
