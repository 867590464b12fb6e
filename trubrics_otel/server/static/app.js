"use strict";
// The local server's page: dashboard, threads, events, sessions, users, traces.
// Safety rule: every value from the store enters the page as text (el() -> textContent /
// setAttribute), never as HTML. The one exception is a generation's markdown, which goes
// through marked (raw HTML escaped) and then DOMPurify (links only http(s)/mailto, no images).
// Links are "#..." fragments built with encodeURIComponent. The server's CSP forbids inline
// script, so injected markup could not run even if it got in.

const main = document.getElementById("main");
const KEY_STORAGE = "trubrics-otel-read-key";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "onclick") node.addEventListener("click", value);
    else if (key === "onchange") node.addEventListener("change", value);
    else if (key === "onsubmit") node.addEventListener("submit", value);
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

class HttpError extends Error {
  // the server's reason (a 400's "since (…) is after until (…)") is worth more than its number
  constructor(path, status, detail) {
    super(`${path}: HTTP ${status}` + (typeof detail === "string" && detail ? ` (${detail})` : ""));
    this.status = status;
  }
}

async function api(path, withHeaders) {
  const headers = {};
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (key) headers["x-api-key"] = key;
  const response = await fetch(path, { cache: "no-store", headers });
  if (!response.ok) throw new HttpError(path, response.status, await response.json().then(b => b.detail, () => null));
  const body = await response.json();
  return withHeaders ? { body, next: response.headers.get("X-Next-Before") } : body;
}

// --- routing: #view/arg?filters ---------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#/, "");
  const [head, query = ""] = hash.split("?");
  const params = Object.fromEntries(new URLSearchParams(query));
  let [view, ...rest] = head.split("/");
  let arg = rest.length ? decodeURIComponent(rest.join("/")) : null;
  if (view.includes("=")) {  // the first page's links: #thread=<id>, #user=<id>, #session=<id>
    const [name, ...value] = view.split("=");
    view = name; arg = decodeURIComponent(value.join("="));
    if (view === "session") { view = "events"; params.session = arg; arg = null; }
  }
  const known = ["dashboard", "events", "sessions", "users", "user", "threads", "thread", "trace",
    "retention", "conversations", "feedback", "funnels", "topics"];
  return { view: known.includes(view) ? view : "dashboard", arg, params };
}

function link(view, arg, params) {
  let hash = "#" + view + (arg !== null && arg !== undefined ? "/" + encodeURIComponent(arg) : "");
  const query = new URLSearchParams(Object.entries(params || {}).filter(([, v]) => v !== "" && v != null));
  return query.toString() ? hash + "?" + query : hash;
}

function go(view, arg, params) { location.hash = link(view, arg, params); }

// --- formatting ---------------------------------------------------------------------------------

function when(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
}
function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 0)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}
const num = n => (n ?? 0).toLocaleString();
// dollars: cents from $1, four decimals from a tenth of a cent, else two significant digits (a
// $0.0000325 call is not "$0.0000"); the plain number (no "$") for table cells and CSV
function dollars(n) {
  if (n === null || n === undefined) return "";
  if (n === 0 || Math.abs(n) >= 0.001) return n.toFixed(Math.abs(n) < 1 ? 4 : 2);
  return n.toLocaleString("en-US", { maximumSignificantDigits: 2, useGrouping: false });
}
const usd = n => (n === null || n === undefined ? "–" : "$" + dollars(n));
const plural = (n, word) => `${num(n)} ${word}${n === 1 ? "" : "s"}`;

const userLink = user => el("a", { class: "link", href: link("user", user) }, user);
const threadLink = thread => thread ? el("a", { class: "link mono", href: link("thread", thread) }, thread) : "";
const traceLink = trace => trace ? el("a", { class: "link mono", href: link("trace", trace) }, "trace") : "";

function card(label, value, small) {
  return el("div", { class: "card" }, el("div", { class: "label" }, label), el("div", { class: "value" + (small ? " small" : "") }, value));
}

function table(headers, rows, empty) {
  if (!rows.length) return el("div", { class: "panel empty" }, empty || "Nothing stored yet.");
  return el("div", { class: "panel" }, el("table", {},
    el("thead", {}, el("tr", {}, headers.map(h => el("th", {}, h)))),
    el("tbody", {}, rows.map(cells => el("tr", {},
      cells.map(c => c instanceof Node && c.tagName === "TD" ? c : el("td", {}, c)))))));
}

// a table under its title, with a CSV export of the rows it shows (csvLink, insights.js): raw
// values and UTC times where the table shows local ones
function exported(name, headers, rows, tableNode, title) {
  return el("div", { class: "data-table", "data-table": name },
    el("div", { class: "section" }, title || name, " ", rows.length ? csvLink(name, headers, rows) : null), tableNode);
}

function pager(next, onOlder, onNewest) {
  return el("div", { class: "pager" },
    onNewest ? el("button", { type: "button", onclick: onNewest }, "← Newest") : null,
    next ? el("button", { type: "button", class: "older", onclick: () => onOlder(next) }, "Older →") : null);
}

function ownProperties(props) {
  const shown = {};
  for (const [k, v] of Object.entries(props || {})) if (!k.startsWith("$")) shown[k] = v;
  return Object.keys(shown).length ? JSON.stringify(shown) : "";
}

// Markdown -> sanitised DOM, escape first: raw HTML in the text is shown as text (marked's
// html renderer escapes it), then DOMPurify vets what marked made (links only http(s)/mailto).
const ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const escapeHtml = text => String(text).replace(/[&<>"']/g, c => ESCAPES[c]);
const md = typeof marked === "undefined" ? null
  : new marked.Marked({ gfm: true, breaks: true, async: false, renderer: { html: ({ text }) => escapeHtml(text) } });

function markdown(text) {
  const box = el("div", { class: "bubble md" });
  if (!md || typeof DOMPurify === "undefined") { box.textContent = text; return box; }
  const clean = DOMPurify.sanitize(md.parse(String(text)), {
    USE_PROFILES: { html: true }, ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
    FORBID_TAGS: ["img", "style", "form", "input", "svg", "math"],
    FORBID_ATTR: ["style"], RETURN_DOM_FRAGMENT: true,
  });
  for (const a of clean.querySelectorAll("a")) { a.setAttribute("rel", "noopener noreferrer"); a.setAttribute("target", "_blank"); }
  box.append(clean);
  return box;
}

// --- filters (shared by the views) ---------------------------------------------------------------

function filterBar(fields, params, apply) {
  const form = el("form", { class: "bar", onsubmit: e => { e.preventDefault(); apply(Object.fromEntries(new FormData(form))); } },
    fields, el("button", { type: "submit", class: "primary" }, "Apply"));
  for (const input of form.querySelectorAll("input, select")) if (params[input.name] !== undefined) input.value = params[input.name];
  for (const select of form.querySelectorAll("select")) select.addEventListener("change", () => form.requestSubmit());
  return form;
}

function select(name, options, label) {
  return el("select", { name, "aria-label": label }, el("option", { value: "" }, label),
    options.map(o => Array.isArray(o) ? el("option", { value: o[0] }, o[1]) : el("option", { value: o }, o)));
}

// --- events ------------------------------------------------------------------------------------------

function eventCell(e) {
  if (e.kind !== "llm") return el("span", { class: "pill" }, e.event);
  return el("span", { class: "llm-cell" },
    el("span", { class: "pill llm" }, e.model || e.generation_event_name), " ",
    el("span", { class: "clip p", title: e.prompt }, e.prompt), " → ",
    el("span", { class: "clip g", title: e.generation }, e.generation),
    e.error ? [" ", el("span", { class: "pill err" }, "error")] : null);
}

function eventRows(events) {
  return events.map(e => [
    when(e.timestamp), userLink(e.user_id), eventCell(e),
    e.kind === "llm" ? [duration(e.latency), e.input_tokens !== null ? ` · ${e.input_tokens}→${e.output_tokens ?? "?"} tok` : ""] : "",
    threadLink(e.thread_id),
    e.session_id ? el("a", { class: "link mono", href: link("events", null, { session: e.session_id }) }, e.session_id.slice(0, 8)) : "",
    traceLink(e.trace_id),
    el("td", { class: "props", title: JSON.stringify(e.properties) }, ownProperties(e.properties)),
  ]);
}

const EVENT_HEADERS = ["Time", "User", "Event", "LLM", "Thread", "Session", "Trace", "Properties"];
const EVENT_CSV = ["Time (UTC)", "User", "Kind", "Event", "Model", "Prompt", "Generation", "Latency s", "Input tokens",
  "Output tokens", "Cost $", "Error", "Thread", "Session", "Trace", "Properties"];
const eventCsv = events => events.map(e => [e.timestamp, e.user_id, e.kind, e.event, e.model, e.prompt, e.generation,
  e.latency, e.input_tokens, e.output_tokens, e.cost_usd, e.error, e.thread_id, e.session_id, e.trace_id, JSON.stringify(e.properties)]);

function eventsTable(name, events, empty, title) {
  return exported(name, EVENT_CSV, eventCsv(events), table(EVENT_HEADERS, eventRows(events), empty), title);
}

async function renderEvents(r) {
  const p = r.params;
  const query = new URLSearchParams({ limit: "50" });
  for (const f of ["user", "event", "model", "kind", "q", "session", "thread", "since", "until", "before"]) if (p[f]) query.set(f, p[f]);
  const [{ body: events, next }, filters] = await Promise.all([api("/api/events?" + query, true), api("/api/filters")]);
  const { before, ...current } = p;
  const bar = filterBar([
    el("input", { type: "search", name: "q", placeholder: "Search prompts and generations", "aria-label": "search" }),
    el("input", { name: "user", placeholder: "user id", "aria-label": "user" }),
    select("event", filters.events, "All events"), select("model", filters.models, "All models"),
    select("kind", [["event", "product events"], ["llm", "LLM events"]], "All kinds"),
    el("input", { name: "since", placeholder: "since (7d, ISO)", "aria-label": "since" }),
    el("input", { name: "until", placeholder: "until (2h, ISO)", "aria-label": "until" }),
    p.session ? el("input", { type: "hidden", name: "session" }) : null,
    p.thread ? el("input", { type: "hidden", name: "thread" }) : null,
  ], current, values => go("events", null, values));
  const chips = el("div", { class: "bar" }, p.session ? el("span", { class: "chip" }, "session ", p.session.slice(0, 8)) : null,
    p.thread ? el("span", { class: "chip" }, "thread ", p.thread) : null,
    p.session || p.thread ? el("a", { class: "link", href: "#events" }, "clear") : null);
  return [bar, chips, eventsTable("events", events, "No events match."),
    pager(next, cursor => go("events", null, { ...current, before: cursor }), before ? () => go("events", null, current) : null)];
}

// --- sessions and users ----------------------------------------------------------------------------------

function sessionRows(sessions) {
  return sessions.map(s => [
    el("a", { class: "link mono", href: link("events", null, { session: s.session_id }) }, s.session_id.slice(0, 8)),
    userLink(s.user_id), when(s.start), duration(s.duration_s), s.events, s.llm_events, s.threads, s.event_names.join(", "),
  ]);
}
const SESSION_HEADERS = ["Session", "User", "Start", "Duration", "Events", "LLM events", "Threads", "Event names"];
const SESSION_CSV = ["Session", "User", "Start (UTC)", "End (UTC)", "Duration s", "Events", "LLM events", "Threads", "Event names"];

function sessionsTable(name, sessions, title) {
  return exported(name, SESSION_CSV, sessions.map(s => [s.session_id, s.user_id, s.start, s.end, s.duration_s, s.events,
    s.llm_events, s.threads, s.event_names.join(", ")]), table(SESSION_HEADERS, sessionRows(sessions)), title);
}

async function renderSessions(r) {
  const query = new URLSearchParams({ limit: "50" });
  if (r.params.before) query.set("before", r.params.before);
  const { body, next } = await api("/api/sessions?" + query, true);
  return [sessionsTable("sessions", body),
    pager(next, cursor => go("sessions", null, { before: cursor }), r.params.before ? () => go("sessions") : null)];
}

async function renderUsers(r) {
  const query = new URLSearchParams({ limit: "100" });
  for (const f of ["q", "before"]) if (r.params[f]) query.set(f, r.params[f]);
  const { body, next } = await api("/api/users?" + query, true);
  const { before, ...current } = r.params;
  const bar = filterBar([el("input", { type: "search", name: "q", placeholder: "Find a user", "aria-label": "find user" })],
    current, values => go("users", null, values));
  return [bar, exported("users", ["User", "Events", "LLM calls", "Threads", "Input tokens", "Output tokens", "Cost $", "Errors",
    "First seen (UTC)", "Last seen (UTC)"], body.map(u => [u.user_id, u.events, u.llm_events, u.threads, u.input_tokens,
    u.output_tokens, u.cost_usd, u.errors, u.first_seen, u.last_seen]),
    table(["User", "Events", "LLM calls", "Threads", "Tokens in/out", "Cost", "Errors", "First seen", "Last seen"],
    body.map(u => [userLink(u.user_id), u.events, u.llm_events, u.threads, `${num(u.input_tokens)} / ${num(u.output_tokens)}`,
      usd(u.cost_usd), u.errors || "", when(u.first_seen), when(u.last_seen)]))),
    pager(next, cursor => go("users", null, { ...current, before: cursor }), before ? () => go("users", null, current) : null)];
}

async function renderUser(r) {
  const u = await api("/api/users/" + encodeURIComponent(r.arg));
  const threads = u.recent_threads, feedback = u.feedback;
  return el("div", { class: "profile", "data-user": u.user_id },
    el("h2", {}, "User ", el("span", { class: "mono" }, u.user_id)),
    el("div", { class: "cards" }, card("All events", num(u.events)), card("LLM calls", num(u.llm_events)),
      card("Threads", num(u.threads)), card("Tokens in / out", `${num(u.input_tokens)} / ${num(u.output_tokens)}`),
      card("Cost", usd(u.cost_usd)), card("Errors", num(u.errors)), card("First seen", when(u.first_seen), true),
      card("Last seen", when(u.last_seen), true)),
    sessionsTable("sessions", u.recent_sessions, "Sessions"),
    exported("threads", ["Thread", "Title", "Turns", "Input tokens", "Output tokens", "Feedback", "Last (UTC)"],
      threads.map(t => [t.thread_id, t.title, t.turns, t.input_tokens, t.output_tokens, feedbackSummary(t, Infinity), t.end]),
      table(["Thread", "Title", "Turns", "Tokens", "Feedback", "Last"],
        threads.map(t => [threadLink(t.thread_id), t.title || "", t.turns, `${num(t.input_tokens)} / ${num(t.output_tokens)}`,
          feedbackSummary(t), when(t.end)])), "Threads"),
    exported("feedback", ["Time (UTC)", "Event", "Name", "Value", "Thread", "Properties"],
      feedback.map(e => [e.timestamp, e.event, e.name, e.label, e.thread_id, ownProperties(e.properties)]),
      table(["Time", "Event", "Thread", "Properties"],
        feedback.map(e => [when(e.timestamp), el("span", { class: "pill" + (e.sentiment < 0 ? " neg" : "") }, `${e.name || e.event} = ${e.label ?? ""}`), threadLink(e.thread_id), ownProperties(e.properties)]),
        "No feedback events."), "Feedback"),
    eventsTable("timeline", u.timeline.events, null, "Timeline"),
    u.timeline.next ? el("a", { class: "link", href: link("events", null, { user: u.user_id }) }, "All events of this user →") : null);
}

// --- threads -------------------------------------------------------------------------------------------------

function feedbackSummary(thread, shown = 5) {
  // each name with its values as sent, oldest first: "thumbs = true, false; rating = 4"
  const byName = new Map();
  for (const f of thread.feedback_values || []) byName.set(f.name, [...(byName.get(f.name) || []), f.label ?? ""]);
  return [...byName].map(([name, labels]) => `${name} = ${labels.slice(0, shown).join(", ")}` +
    (labels.length > shown ? ` (+${labels.length - shown} more)` : "")).join("; ");
}

function tokens(turn) {
  if (turn.input_tokens === null && turn.output_tokens === null) return null;
  return `${turn.input_tokens ?? "?"} → ${turn.output_tokens ?? "?"} tokens`;
}

function conversation(thread) {
  const first = thread.turns[0], last = thread.turns[thread.turns.length - 1];
  const items = [...thread.turns.map(t => ({ at: t.timestamp, turn: t })), ...thread.feedback_events.map(f => ({ at: f.timestamp, feedback: f }))]
    .sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return el("div", { class: "panel conversation", "data-thread": thread.thread_id },
    el("h2", {}, "Thread ", el("span", { class: "mono" }, thread.thread_id)),
    el("div", { class: "sub" }, `${plural(thread.turns.length, "turn")} · ${when(first.timestamp)} – ${when(last.timestamp)} · user `,
      userLink(first.user_id), ` · ${num(thread.input_tokens)} → ${num(thread.output_tokens)} tokens · ${usd(thread.cost_usd)}`,
      thread.errors ? ` · ${thread.errors} failed` : ""),
    items.map(item => item.feedback ? el("div", { class: "feedback-item", "data-feedback": item.feedback.event },
      el("span", { class: "pill" + (item.feedback.sentiment < 0 ? " neg" : "") },
        item.feedback.name || item.feedback.event, " = ", item.feedback.label ?? "",
        " · ", item.feedback.user_id, " · ", when(item.feedback.timestamp)))
      : turnView(item.turn)));
}

function turnView(t) {
  return el("div", { class: "turn", "data-turn": t.id },
    el("div", { class: "prompt" },
      el("div", { class: "who" }, `${t.user_id} · ${t.prompt_event_name}`),
      el("div", { class: "bubble" }, t.prompt)),
    el("div", { class: "generation" + (t.error ? " failed" : "") },
      el("div", { class: "who" }, `${t.model || t.assistant_id || "assistant"} · ${t.generation_event_name}`),
      t.error && !t.generation ? el("div", { class: "bubble" }, "⚠ " + t.error) : markdown(t.generation),
      el("div", { class: "meta-line" },
        t.model ? el("span", {}, t.model) : null,
        t.latency !== null ? el("span", {}, `${t.latency.toFixed(2)} s`) : null,
        tokens(t) ? el("span", {}, tokens(t)) : null,
        t.cost_usd !== null ? el("span", {}, usd(t.cost_usd)) : null,
        el("span", {}, when(t.timestamp)),
        t.trace_id ? el("span", {}, traceLink(t.trace_id)) : null,
        t.error && t.generation ? el("span", { class: "pill err" }, t.error) : null)));
}

async function renderThreads(r) {
  const query = new URLSearchParams({ limit: "100" });
  if (r.params.before) query.set("before", r.params.before);
  const { body: threads, next } = await api("/api/threads?" + query, true);
  if (!threads.length && !r.arg) return el("div", { class: "panel empty" }, "No threads yet: LLM events with a thread_id appear here.");
  const selected = r.arg || threads[0].thread_id;
  const list = el("div", { class: "panel thread-list" }, threads.map(t =>
    el("div", { class: "thread-item" + (t.thread_id === selected ? " active" : ""), onclick: () => go("thread", t.thread_id) },
      el("div", { class: "title" }, t.title || t.thread_id),
      el("div", { class: "meta" }, `${plural(t.turns, "turn")} · ${t.users.join(", ")} · ${when(t.end)}`),
      el("div", { class: "meta totals" }, `${num(t.input_tokens)} → ${num(t.output_tokens)} tokens`,
        t.cost_usd !== null ? ` · ${usd(t.cost_usd)}` : "", feedbackSummary(t) ? " · " + feedbackSummary(t) : "",
        t.errors ? [" ", el("span", { class: "pill err" }, `${t.errors} failed`)] : null))),
    pager(next, cursor => go("threads", null, { before: cursor }), null));
  let detail;
  try {
    detail = conversation(await api("/api/threads/" + encodeURIComponent(selected)));
  } catch (error) {
    detail = el("div", { class: "panel empty" }, `No thread ${selected}.`);
  }
  return el("div", { class: "threads" }, list, detail);
}

// --- shell ---------------------------------------------------------------------------------------------------

const views = { dashboard: renderDashboard, events: renderEvents, sessions: renderSessions, users: renderUsers,
  user: renderUser, threads: renderThreads, thread: renderThreads, trace: renderTrace,
  retention: renderRetention, conversations: renderConversations, feedback: renderFeedback, funnels: renderFunnels, topics: renderTopics };
const navFor = { user: "users", thread: "threads", trace: "events" };
let rendering = false;
let renderAgain = false;  // the route changed while rendering: render once more when done
let shownLastId = null;
let notFound = false;  // the view answered 404: no re-render until the route changes

function showStats(stats) {
  document.getElementById("stats").textContent =
    `${plural(stats.events, "product event")} · ${plural(stats.llm_events, "LLM event")} · ${plural(stats.users, "user")}`;
}

function askForKey() {
  const input = el("input", { type: "password", name: "key", placeholder: "API key", "aria-label": "API key" });
  return el("form", { class: "panel keybox", onsubmit: e => { e.preventDefault(); sessionStorage.setItem(KEY_STORAGE, input.value); render(); } },
    el("div", {}, "This server is reachable over the network: reading needs its API key (serve --api-key)."), input,
    el("button", { type: "submit" }, "Open"));
}

async function render() {
  if (rendering) { renderAgain = true; return; }
  rendering = true;
  renderAgain = false;
  delete document.body.dataset.ready;
  const r = route();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === (navFor[r.view] || r.view));
  try {
    const [content, stats] = await Promise.all([views[r.view](r), api("/api/stats")]);
    showStats(stats);
    shownLastId = stats.last_id;
    const scroll = window.scrollY;
    main.replaceChildren(...[content].flat().filter(Boolean));
    window.scrollTo(0, scroll);
    document.body.dataset.ready = "true";
    notFound = false;
  } catch (error) {
    notFound = error.status === 404;
    if (error.status === 401 || error.status === 403) main.replaceChildren(askForKey());
    else main.replaceChildren(el("div", { class: "panel empty" }, "Could not load: " + error.message));
  } finally {
    rendering = false;
    if (renderAgain) render();
  }
}

// New events appear by themselves: a cheap poll, and a re-render only when something arrived
// (not on the dashboard, where a redraw would be a distraction, unless it showed an empty
// store, nor on an older page).
async function poll() {
  if (document.hidden || rendering || notFound) return;
  const r = route();
  if (r.params.before) return;
  try {
    const stats = await api("/api/stats");
    const quiet = r.view === "dashboard" && !document.getElementById("welcome");  // the first events replace the welcome
    if (stats.last_id !== shownLastId) { if (quiet) { showStats(stats); shownLastId = stats.last_id; } else render(); }
  } catch (error) { /* the server may be restarting; try again next time */ }
}

window.addEventListener("hashchange", render);
setInterval(poll, 3000);
render();
