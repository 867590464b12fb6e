"use strict";
// The trace view: the tree of a trace's events (by $parent_span_id), each with its start offset
// and a waterfall bar (where it starts and how long it lasts within the trace), a score's value.
// Loaded before app.js, whose helpers (el, api, when, duration, userLink ...) it calls.
// Values reach the page as text only, like everywhere else (see app.js).

async function renderTrace(r) {
  const trace = await api("/api/traces/" + encodeURIComponent(r.arg));
  const t0 = Date.parse(trace.start);
  const offset = n => Math.max(0, (Date.parse(n.timestamp) - t0) / 1000);
  const total = Math.max(0.001, ...flatten(trace.roots).map(n => offset(n) + (n.duration_s || 0)));
  const node = n => el("div", { class: "node" + (n.error ? " failed" : ""), "data-span": n.span_id },
    el("div", { class: "head" },
      el("span", { class: "name" }, n.name),
      el("span", { class: "pill" + (n.kind === "llm" ? " llm" : "") }, n.kind === "llm" ? (n.model || "LLM") : (n.properties.observation_type || "event")),
      n.properties.observation_type === "score" ? el("span", { class: "score-value" }, "= " + scoreValue(n.properties.value)) : null,
      el("span", { class: "waterfall" }, el("span", { class: "dur", "data-left": (100 * offset(n) / total).toFixed(2),
        "data-width": (100 * (n.duration_s || 0) / total).toFixed(2) })),
      el("span", { class: "offset" }, "+" + duration(offset(n))),
      n.duration_s !== null && n.duration_s !== undefined ? duration(n.duration_s) : null,
      el("span", { class: "who" }, when(n.timestamp)), userLink(n.user_id),
      n.thread_id ? threadLink(n.thread_id) : null, n.error ? el("span", { class: "pill err" }, n.error) : null),
    io("input", n.kind === "llm" ? n.prompt : n.properties.input),
    io("output", n.kind === "llm" ? n.generation : n.properties.output),
    n.children.map(node));
  const tree = el("div", { class: "panel tree", "data-trace": trace.trace_id },
    el("h2", {}, "Trace ", el("span", { class: "mono" }, trace.trace_id)),
    el("div", { class: "sub" }, `${trace.events} events · ${when(trace.start)} – ${when(trace.end)}`),
    trace.roots.map(node));
  for (const bar of tree.querySelectorAll(".dur")) {  // CSSOM: allowed by the CSP
    bar.style.left = Number(bar.dataset.left) + "%";
    bar.style.width = `max(2px, ${Number(bar.dataset.width)}%)`;
  }
  return tree;
}

function scoreValue(value) {
  return value === null || value === undefined ? "" : typeof value === "string" ? value : JSON.stringify(value);
}

function io(label, value) {
  if (value === undefined || value === null || value === "") return null;
  return el("div", { class: "io" }, label + ": " + (typeof value === "string" ? value : JSON.stringify(value)));
}

function flatten(nodes) { return nodes.flatMap(n => [n, ...flatten(n.children)]); }
