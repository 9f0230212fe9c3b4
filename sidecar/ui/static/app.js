// The openclaw-sidecar page: polls /ui/api/state every 2 s and draws it with the DOM and SVG
// (text only through textContent: nothing from the state is ever parsed as HTML). No library.
"use strict";

const POLL_MS = 2000;
const COLORS = ["#3559e0", "#12805c", "#b54708", "#7a5af8", "#c11574", "#0e7090", "#667085"];
const SVG = "http://www.w3.org/2000/svg";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let offset = 0; // server clock minus this browser's, so countdowns use the server's "now"

function el(tag, attrs, ...children) {
  const node = tag.startsWith("svg:")
    ? document.createElementNS(SVG, tag.slice(4))
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined && value !== false) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) {
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return node;
}

function now() {
  return Date.now() + offset;
}

function span(ms) {
  const minutes = Math.floor(Math.abs(ms) / 60000);
  if (minutes < 1) return `${Math.floor(Math.abs(ms) / 1000)}s`;
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${String(minutes % 60).padStart(2, "0")}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// An element whose text counts down to (or up from) a moment; refreshed every second.
function countdown(until, before, after) {
  return el("span", { "data-until": until, "data-before": before, "data-after": after });
}

function tick() {
  for (const node of document.querySelectorAll("[data-until]")) {
    const left = Number(node.dataset.until) - now();
    node.textContent =
      left > 0 ? `${node.dataset.before} ${span(left)}` : `${node.dataset.after} ${span(left)} ago`;
  }
}

function windowRow(w) {
  const used = w.utilization === null ? null : Math.round(w.utilization * 100);
  const fill = el("div", { class: "fill" });
  if (used !== null) {
    fill.style.width = `${Math.min(used, 100)}%`;
    if (used >= 100) fill.classList.add("full");
    else if (used >= 80) fill.classList.add("high");
  }
  return el(
    "div",
    { class: "window", "data-window": w.name },
    el("span", {}, w.name),
    el("div", { class: "bar", title: w.status || "" }, fill),
    el(
      "span",
      {},
      used === null ? "" : `${used}%`,
      w.resetsAt ? [" · ", countdown(w.resetsAt, "resets in", "reset")] : null,
    ),
  );
}

function cooldownCell(agent, p) {
  if (!p.cooldown) return el("td", {}, el("span", { class: "small" }, "—"));
  const button = el("button", { type: "button", "data-action": "clear-cooldown" }, "Clear");
  button.addEventListener("click", () => clearCooldown(agent, p.id, button));
  return el(
    "td",
    { class: "resting", "data-cooldown": p.cooldown.kind },
    `${p.cooldown.kind}: ${p.cooldown.reason} `,
    el("br"),
    el("span", { class: "small" }, countdown(p.cooldown.until, "ends in", "ended")),
    " ",
    button,
  );
}

function profileRow(agent, p) {
  return el(
    "tr",
    { "data-profile": `${agent}/${p.id}` },
    el(
      "td",
      {},
      el("strong", {}, p.id),
      p.email ? el("div", { class: "email" }, p.email) : null,
      p.inherited ? el("div", { class: "small" }, `from ${p.owner}`) : null,
    ),
    el("td", {}, p.provider, el("div", { class: "small" }, p.type)),
    el("td", {}, el("span", { class: `badge st-${p.status}`, "data-status": p.status }, p.status)),
    el("td", {}, p.expiresAt ? countdown(p.expiresAt, "in", "expired") : el("span", { class: "small" }, "never")),
    cooldownCell(agent, p),
    el("td", {}, p.windows.length ? p.windows.map(windowRow) : el("span", { class: "small" }, "—")),
  );
}

const COLUMNS = [
  ["profile", "22%"], ["provider", "11%"], ["state", "9%"],
  ["expires", "10%"], ["cooldown", "16%"], ["windows", "32%"],
];

// An agent's card: its own profiles, and those it inherits when their owner has no card of its
// own on this page (a listener bound to one agent); else the inherited ones are named in a line.
function agentCard(a, shown) {
  const rows = a.profiles.filter((p) => !p.inherited || !shown.has(p.owner));
  const named = a.profiles.filter((p) => p.inherited && shown.has(p.owner));
  return el(
    "div",
    { class: "agent", "data-agent": a.agent },
    el("h3", {}, `agent ${a.agent}`),
    rows.length
      ? el(
          "table",
          {},
          el("colgroup", {}, COLUMNS.map(([, width]) => el("col", { "data-width": width }))),
          el("tr", {}, COLUMNS.map(([name]) => el("th", {}, name))),
          rows.map((p) => profileRow(a.agent, p)),
        )
      : el("p", { class: "small" }, "no profiles of its own"),
    named.length
      ? el("p", { class: "small", "data-inherited": named.map((p) => p.id).join(" ") },
          `also uses ${named.map((p) => `${p.id} (from ${p.owner})`).join(", ")}`)
      : null,
  );
}

function drawAgents(state) {
  const shown = new Set(state.agents.map((a) => a.agent));
  const cards = state.agents.map((a) => agentCard(a, shown));
  const errors = state.errors.map((e) =>
    el("div", { class: "agent error", "data-agent": e.agent }, `agent ${e.agent}: ${e.message}`),
  );
  document.getElementById("agents").replaceChildren(...cards, ...errors);
  document.querySelectorAll("col[data-width]").forEach((c) => {
    c.style.width = c.dataset.width;
  });
}

function drawChart(id, series, index) {
  const svg = document.getElementById(id);
  const agents = Object.keys(series.agents);
  const hours = agents.length ? series.agents[agents[0]].length : 24;
  const totals = Array.from({ length: hours }, (_, h) =>
    agents.reduce((sum, a) => sum + series.agents[a][h][index], 0),
  );
  const top = Math.max(1, ...totals);
  const width = 480, height = 160, left = 36, bottom = 18, barW = (width - left) / hours;
  const scale = (height - bottom - 8) / top;
  const shapes = [el("svg:text", { x: 0, y: 12 }, top.toLocaleString())];
  for (let h = 0; h < hours; h += 1) {
    let y = height - bottom;
    agents.forEach((a, i) => {
      const value = series.agents[a][h][index];
      if (!value) return;
      const barH = Math.max(1, value * scale);
      y -= barH;
      shapes.push(
        el(
          "svg:rect",
          { x: left + h * barW + 1, y, width: Math.max(1, barW - 2), height: barH, fill: COLORS[i % COLORS.length] },
          el("svg:title", {}, `${a}: ${value.toLocaleString()} at ${clock(series.start + h * series.bucketMs)}`),
        ),
      );
    });
    if (h % 6 === 0) {
      shapes.push(el("svg:text", { x: left + h * barW, y: height - 4 }, clock(series.start + h * series.bucketMs)));
    }
  }
  shapes.push(el("svg:line", { x1: left, x2: width, y1: height - bottom, y2: height - bottom, stroke: "#e4e7ec" }));
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren(...shapes);
}

function drawTotals(series) {
  const rows = Object.entries(series.agents).map(([agent, hours], i) => {
    const requests = hours.reduce((s, h) => s + h[0], 0);
    const tokens = hours.reduce((s, h) => s + h[1], 0);
    return el(
      "tr",
      { "data-totals": agent },
      el("td", {}, el("span", { class: "swatch", "data-color": i }), agent),
      el("td", { class: "num", "data-requests": requests }, requests.toLocaleString()),
      el("td", { class: "num", "data-tokens": tokens }, tokens.toLocaleString()),
    );
  });
  const head = el("tr", {}, el("th", {}, "agent"), el("th", { class: "num" }, "requests"), el("th", { class: "num" }, "tokens"));
  document.getElementById("totals").replaceChildren(head, ...rows);
  document.querySelectorAll(".swatch").forEach((s) => {
    s.style.background = COLORS[Number(s.dataset.color) % COLORS.length];
  });
}

function drawRecent(state) {
  const items = state.recent.map((r) =>
    el(
      "li",
      { "data-kind": r.kind },
      el("span", { class: "small" }, clock(r.at)),
      " ",
      r.kind === "refresh"
        ? `refresh of ${r.profile}: ${r.outcome}`
        : `${r.agent} → ${r.profile || r.provider}${r.model ? ` (${r.model})` : ""}: ${r.outcome}`,
    ),
  );
  if (state.usageProblem) items.unshift(el("li", { class: "error" }, state.usageProblem));
  document.getElementById("recent").replaceChildren(...(items.length ? items : [el("li", { class: "small" }, "nothing yet")]));
}

function draw(state) {
  drawAgents(state);
  drawChart("chart-requests", state.series, 0);
  drawChart("chart-tokens", state.series, 1);
  drawTotals(state.series);
  drawRecent(state);
  tick();
}

async function poll() {
  const status = document.getElementById("updated");
  try {
    const response = await fetch("/ui/api/state", { cache: "no-store", credentials: "same-origin" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const state = await response.json();
    offset = state.now - Date.now();
    draw(state);
    status.textContent = `updated ${new Date(state.now).toLocaleTimeString()}`;
    status.classList.remove("error");
  } catch (error) {
    status.textContent = `cannot reach the sidecar (${error.message}); retrying`;
    status.classList.add("error");
  }
}

async function clearCooldown(agent, profile, button) {
  button.disabled = true;
  const response = await fetch("/ui/api/cooldown/clear", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-OpenClaw-CSRF": csrf },
    body: JSON.stringify({ agent, profile }),
  });
  if (!response.ok) {
    const problem = await response.json().catch(() => ({ message: `HTTP ${response.status}` }));
    button.disabled = false;
    button.title = problem.message;
  }
  await poll();
}

async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}

setInterval(tick, 1000);
loop();
