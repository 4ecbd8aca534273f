// kazeflow ui: draws /api/graph as SVG and shows one asset, the runs or one run in the
// side panel; polls the graph every second and redraws only what changed.
"use strict";

const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
let graphSignature = "";
let panelToken = 0;

// ------------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  node.append(...children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    if (key === "text") node.textContent = value;
    else if (key === "onclick") node.addEventListener("click", value);
    else node.setAttribute(key, value);
  }
}

async function getJSON(url) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

function duration(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function size(n) {
  if (n === null || n === undefined) return "-";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n, i = 0;
  while (value >= 1024 && i < units.length - 1) { value /= 1024; i += 1; }
  return i === 0 ? `${n} B` : `${value.toFixed(1)} ${units[i]}`;
}

function when(t) {
  if (t === null || t === undefined) return "-";
  const d = new Date(t * 1000), p = (x) => String(x).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

const short = (v) => (v ? v.slice(0, 12) : "-");
const lastLine = (text) => (text ? text.trim().split("\n").pop() : "");
const badge = (text, kind) => el("span", { class: `badge ${kind}-${text.replace(" ", "-")}`, text });
const link = (href, text) => el("a", { href, text });

function parseRoute() {
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  return { page: parts[0] || "", key: decodeURIComponent(parts.slice(1).join("/")) };
}

function showError(message) {
  const box = document.getElementById("error");
  box.hidden = !message;
  box.textContent = message || "";
}

// ------------------------------------------------------------------ the graph

function drawGraph(g) {
  document.getElementById("target").textContent = `${g.target}  ·  ${g.store}`;
  const W = g.node_width, H = g.node_height, root = document.getElementById("graph");
  const byName = Object.fromEntries(g.nodes.map((n) => [n.name, n]));
  const selected = parseRoute().page === "asset" ? parseRoute().key : null;
  const parts = [svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9,
    refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" },
  svg("path", { d: "M0,0 L10,5 L0,10 z" })))];
  for (const n of g.nodes) {
    for (const dep of n.deps) {
      const u = byName[dep];
      if (!u) continue;
      const x1 = u.x + W, y1 = u.y + H / 2, x2 = n.x, y2 = n.y + H / 2, dx = (x2 - x1) / 2;
      parts.push(svg("path", { class: "edge", "marker-end": "url(#arrow)",
        d: `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}` }));
    }
  }
  for (const n of g.nodes) {
    const meta = [n.shown, n.duration === null ? null : duration(n.duration),
      n.size === null ? null : size(n.size)].filter(Boolean).join(" · ");
    const label = n.name.length > 22 ? `${n.name.slice(0, 21)}…` : n.name;
    const tip = [n.name, `${n.state}${n.step ? ` (${n.step} in the current run)` : ""}`,
      ...n.reasons].join("\n");
    parts.push(svg("g", { class: `node state-${n.shown}${n.name === selected ? " selected" : ""}`,
      "data-name": n.name, "data-state": n.shown, transform: `translate(${n.x},${n.y})`,
      onclick: () => { location.hash = `#/asset/${encodeURIComponent(n.name)}`; } },
    svg("title", { text: tip }),
    svg("rect", { width: W, height: H, rx: 8 }),
    svg("text", { class: "name", x: 10, y: 22, text: label }),
    svg("text", { class: "meta", x: 10, y: 41, text: meta })));
  }
  root.setAttribute("width", g.width);
  root.setAttribute("height", g.height);
  root.setAttribute("viewBox", `0 0 ${g.width} ${g.height}`);
  root.replaceChildren(...parts);
  const live = document.getElementById("live");
  live.hidden = !g.run;
  if (g.run) {
    live.href = `#/run/${g.run.run_id}`;
    live.textContent = `run ${g.run.run_id.slice(0, 8)} running: ${g.run.done}/${g.run.total} done`;
  }
}

// ------------------------------------------------------------------ the asset panel

function diffBlock(text) {
  const pre = el("pre", { class: "diff" });
  for (const line of text.split("\n")) {
    const kind = line.startsWith("+++") || line.startsWith("---") ? "head"
      : line.startsWith("+") ? "add" : line.startsWith("-") ? "del"
        : line.startsWith("@@") ? "hunk" : null;
    pre.append(kind ? el("span", { class: kind, text: line }) : `${line}\n`);
  }
  return pre;
}

function whyTree(node) {
  const head = el("div", {}, el("strong", { text: node.asset_name }), " is ",
    badge(node.state, "state"));
  if (node.state === "fresh" && node.last) {
    head.append(` (materialized ${when(node.last.started_at)} in run `,
      link(`#/run/${node.last.run_id}`, node.last.run_id.slice(0, 8)),
      `, data version ${short(node.last.data_version)})`);
  }
  const list = el("ul", { class: "why" });
  for (const reason of node.reasons) {
    let text = reason.message;
    if (reason.kind === "code_changed" && reason.details.changed) {
      text += ` in ${reason.details.changed.join(", ")}`;
    }
    if (reason.kind === "upstream_changed") {
      text += `: data version ${short(reason.details.old_data_version)} → ` +
        short(reason.details.new_data_version);
    }
    if (reason.seen) text += " (explained above)";
    const item = el("li", { "data-kind": reason.kind, text });
    if (reason.diff) item.append(diffBlock(reason.diff));
    else if (reason.kind === "code_changed" && !("diff" in reason.details)) {
      item.append(el("div", { class: "muted", text: "(the previous code is not in the store: no diff)" }));
    }
    if (reason.upstream) item.append(el("div", { class: "upstream" }, whyTree(reason.upstream)));
    list.append(item);
  }
  return el("div", { class: "why-node" }, head, list);
}

function historyTable(records) {
  if (!records.length) return el("p", { class: "hint", text: "never materialized" });
  const rows = records.map((m) => el("tr", { "data-id": m.id },
    el("td", { text: when(m.started_at) }), el("td", { text: duration(m.duration) }),
    el("td", { text: size(m.size) }), el("td", { class: "mono", text: short(m.data_version) }),
    el("td", { class: "mono", title: `code ${m.code_hash}\nconfig ${m.config_hash}`,
      text: `${short(m.code_hash).slice(0, 8)} / ${JSON.stringify(m.config)}` }),
    el("td", {}, badge(m.status, "status"), m.forced ? " forced" : null),
    el("td", {}, link(`#/run/${m.run_id}`, m.run_id.slice(0, 8))),
    el("td", { class: "error-text", title: m.error || "", text: lastLine(m.error) })));
  return el("table", { class: "history" }, el("thead", {}, el("tr", {},
    ...["time", "duration", "size", "data version", "code / config", "status", "run", "error"]
      .map((h) => el("th", { text: h })))), el("tbody", {}, ...rows));
}

async function assetPanel(name) {
  const a = await getJSON(`/api/asset/${encodeURIComponent(name)}`);
  const links = (names) => (names.length ? names.flatMap((n, i) =>
    [i ? ", " : "", link(`#/asset/${encodeURIComponent(n)}`, n)]) : ["-"]);
  const preview = a.preview.repr !== null
    ? el("pre", { class: "preview", text: a.preview.repr })
    : el("p", { class: "hint", text: a.preview.error });
  return [el("h2", {}, `${a.asset_name} `, badge(a.shown, "state")),
    a.description ? el("p", { text: a.description }) : null,
    el("p", { class: "muted" }, "upstream: ", ...links(a.deps), " · downstream: ",
      ...links(a.downstream)),
    el("h3", { text: "why" }), el("div", { id: "why" }, whyTree(a.why)),
    el("details", {}, el("summary", { text: "as kazeflow why prints it" }),
      el("pre", { text: a.why_text })),
    el("h3", { text: "history" }), historyTable(a.history),
    el("h3", { text: `value${a.preview.id ? ` (record ${a.preview.id})` : ""}` }), preview];
}

// ------------------------------------------------------------------ runs

async function runsPanel() {
  const { runs } = await getJSON("/api/runs");
  if (!runs.length) return [el("h2", { text: "runs" }), el("p", { class: "hint", text: "no runs yet" })];
  const rows = runs.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, link(`#/run/${r.run_id}`, r.run_id.slice(0, 8))),
    el("td", {}, badge(r.status, "status")), el("td", { text: when(r.started_at) }),
    el("td", { text: duration(r.duration) }),
    el("td", { text: `${r.n_materialized} / ${r.n_reused} / ${r.n_failed}` }),
    el("td", { text: r.selection.join(", ") })));
  return [el("h2", { text: "runs" }), el("table", { class: "runs" }, el("thead", {}, el("tr", {},
    ...["run", "status", "started", "duration", "materialized / reused / failed", "assets"]
      .map((h) => el("th", { text: h })))), el("tbody", {}, ...rows))];
}

function gantt(run) {
  const timed = run.assets.filter((a) => a.started_at !== null);
  const t0 = Math.min(run.started_at, ...timed.map((a) => a.started_at));
  const t1 = Math.max(run.ended_at ?? run.now, ...timed.map((a) => a.ended_at));
  const span = Math.max(t1 - t0, 1e-3), label = 150, width = 420, row = 22;
  const x = (t) => label + ((t - t0) / span) * width;
  const parts = [svg("line", { class: "axis", x1: label, x2: label + width, y1: 14, y2: 14 })];
  for (const f of [0, 0.5, 1]) {
    const anchor = f === 0 ? "start" : f === 1 ? "end" : "middle";
    parts.push(svg("text", { class: "tick", x: label + f * width, y: 10, "text-anchor": anchor,
      text: duration(f * span) }));
  }
  run.assets.forEach((a, i) => {
    const y = 22 + i * row;
    parts.push(svg("text", { x: 0, y: y + 14, text: a.asset_name.slice(0, 22) }));
    if (a.started_at === null) {
      parts.push(svg("text", { class: "tick", x: label, y: y + 14, text: a.outcome }));
      return;
    }
    const kind = { materialized: "running", reused: "fresh", failed: "failed",
      running: "running" }[a.outcome] || "stale";
    parts.push(svg("rect", { class: `bar state-${kind}${a.estimated ? " estimated" : ""}`,
      "data-asset": a.asset_name, x: x(a.started_at), y: y + 2, height: row - 6, rx: 3,
      width: Math.max(x(a.ended_at) - x(a.started_at), 2) },
    svg("title", { text: `${a.asset_name}: ${a.outcome}, ${duration(a.duration)}` })));
  });
  const height = 30 + run.assets.length * row;
  return svg("svg", { class: "gantt", width: label + width + 10, height,
    viewBox: `0 0 ${label + width + 10} ${height}` }, ...parts);
}

async function runPanel(id) {
  const run = await getJSON(`/api/run/${encodeURIComponent(id)}`);
  const rows = run.assets.map((a) => el("tr", { "data-asset": a.asset_name, "data-outcome": a.outcome },
    el("td", {}, link(`#/asset/${encodeURIComponent(a.asset_name)}`, a.asset_name)),
    el("td", {}, badge(a.outcome, "outcome")), el("td", { text: when(a.started_at) }),
    el("td", { text: `${duration(a.duration)}${a.estimated ? " so far" : ""}` }),
    el("td", { text: size(a.size) }),
    el("td", { class: "error-text", title: a.error || "", text: lastLine(a.error) })));
  return [el("h2", {}, `run ${run.run_id.slice(0, 8)} `, badge(run.status, "status")),
    el("p", { class: "muted", text: `started ${when(run.started_at)}, ${duration(run.duration)}` +
      `${run.status === "running" ? " so far" : ""}; ${run.n_materialized} materialized, ` +
      `${run.n_reused} reused, ${run.n_failed} failed; pid ${run.pid} on ${run.hostname}` }),
    run.error ? el("pre", { class: "error-text", text: run.error }) : null,
    el("h3", { text: "timeline" }), gantt(run),
    el("h3", { text: "assets" }), el("table", { id: "run", "data-status": run.status },
      el("thead", {}, el("tr", {}, ...["asset", "outcome", "started", "duration", "size", "error"]
        .map((h) => el("th", { text: h })))), el("tbody", {}, ...rows))];
}

// ------------------------------------------------------------------ the loop

async function renderPanel() {
  const token = ++panelToken, { page, key } = parseRoute();
  let content;
  try {
    if (page === "asset" && key) content = await assetPanel(key);
    else if (page === "run" && key) content = await runPanel(key);
    else content = await runsPanel();
  } catch (err) {
    content = [el("p", { class: "error-text", text: String(err.message || err) })];
  }
  if (token !== panelToken) return; // a newer render started meanwhile
  const panel = document.getElementById("panel");
  panel.replaceChildren(...content.filter(Boolean));
  panel.dataset.page = page || "runs";
}

async function poll() {
  try {
    const g = await getJSON("/api/graph");
    showError(null);
    // a live run's duration ticks every poll; the panel redraws only on real changes
    const signature = JSON.stringify({ ...g, run: g.run && { ...g.run, duration: 0 } });
    const runPage = parseRoute().page === "run";
    if (signature !== graphSignature) {
      graphSignature = signature;
      drawGraph(g);
      await renderPanel();
    } else if (runPage && g.run) {
      await renderPanel();
    }
  } catch (err) {
    showError(`cannot read the flow: ${err.message || err}`);
  }
  setTimeout(poll, POLL_MS);
}

window.addEventListener("hashchange", () => {
  const { page, key } = parseRoute();
  for (const node of document.querySelectorAll("#graph .node")) {
    node.classList.toggle("selected", page === "asset" && node.dataset.name === key);
  }
  renderPanel();
});
poll();
