// The relayer explorer: plain JS, no libraries, no build step. Reads the daemon's JSON API and its event
// stream (/v1/explorer/events); falls back to polling when the stream drops.
"use strict";

const STATES = ["DISPATCHED", "ATTESTED", "SUBMITTED", "DELIVERED", "DROPPED"];
const OPEN_STATES = ["DISPATCHED", "ATTESTED", "SUBMITTED"];
const PALETTE = ["#5b9cf5", "#f0883e", "#3fb27f", "#d16ba5", "#a37ee8", "#4cc3c9", "#d9a13b", "#e5534b"];
const HEX32 = /^0x[0-9a-fA-F]{64}$/;
const PAGE = 100;
const MAX_ROWS = 500;     // live updates beyond this drop the rows that changed longest ago ("Load more" pages on)
const POLL_MS = 2000;

const ui = {
  chains: [],             // [{name, domain, family}]
  colour: {},             // chain name -> colour
  capacity: {},           // chain name -> /v1/chains row
  messages: new Map(),    // id -> message view (+ updated_at)
  nextBefore: null,
  cursor: null,           // store cursor for the event stream (updated_at)
  seq: 0,                 // last chain sample round seen
  rounds: [],             // [{seq, at, chains: {name: sample}}]
  throughput: null,
  search: null,           // {key, ids} while showing search results
  selected: null,
  mode: "connecting",
  stream: null,
  streamErrors: 0,
  pollTimer: null,
  windowS: 900,
  flash: new Set(),
  endpoints: {},          // chain name -> [up?] per RPC endpoint index (relayer_rpc_endpoint_up), never URLs
  view: "messages",       // messages | stuck
  admin: { stuck: [], paused: [], statuses: new Map(), refused: false, loading: false, again: false, dropping: null,
           executing: null, fetchedAt: 0 },  // the stuck view: what the admin API answered last
};

const $ = (sel) => document.querySelector(sel);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else if (k === "style") for (const [p, val] of Object.entries(v)) node.style.setProperty(p, val);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function getJSON(url) {
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  let body = null;
  try { body = await res.json(); } catch (_) { body = null; }
  if (!res.ok) {
    const detail = body && body.detail;
    const msg = typeof detail === "string" ? detail : detail && (detail.error || JSON.stringify(detail));
    const err = new Error(msg || `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---------------------------------------------------------------- formatting
const nf = new Intl.NumberFormat();
function short(hash) { return hash ? `${hash.slice(0, 8)}…${hash.slice(-6)}` : "—"; }
function fmtAge(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
function fmtTime(t) {
  if (!t) return "—";
  const d = new Date(t * 1000);
  return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}
function fmtFee(v, family) {
  if (v === null || v === undefined) return "—";
  if (family === "evm") {
    const gwei = v / 1e9;
    return gwei >= 0.01 ? `${gwei.toFixed(gwei < 10 ? 3 : 1)} gwei` : `${nf.format(v)} wei`;
  }
  return `${nf.format(v)} /unit`;
}
function fmtPct(v) { return v === null || v === undefined ? "—" : `${(v * 100).toFixed(1)} %`; }
function now() { return Date.now() / 1000; }

// ---------------------------------------------------------------- theme
function applyTheme(theme) {
  document.documentElement.dataset.theme = theme;
  try { localStorage.setItem("explorer-theme", theme); } catch (_) { /* private mode */ }
  drawCharts();
}
function initialTheme() {
  const param = new URLSearchParams(location.search).get("theme");
  if (param === "dark" || param === "light") return param;
  try {
    const saved = localStorage.getItem("explorer-theme");
    if (saved === "dark" || saved === "light") return saved;
  } catch (_) { /* private mode */ }
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
}
function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

// ---------------------------------------------------------------- live mode
function setMode(mode) {
  ui.mode = mode;
  $("#live").dataset.mode = mode;
  $("#live-text").textContent = { live: "live (stream)", polling: "live (polling)", offline: "offline, retrying",
                                  connecting: "connecting" }[mode] || mode;
}

function openStream() {
  if (ui.stream) ui.stream.close();
  const params = new URLSearchParams({ after_seq: String(ui.seq) });
  if (ui.cursor !== null) params.set("since", String(ui.cursor));
  const es = new EventSource(`/v1/explorer/events?${params}`);
  ui.stream = es;
  es.addEventListener("hello", () => { ui.streamErrors = 0; stopPolling(); setMode("live"); });
  es.addEventListener("messages", (e) => {
    const data = JSON.parse(e.data);
    ui.cursor = data.cursor;
    if (data.truncated) reloadMessages();
    else applyMessages(data.messages, true);
  });
  es.addEventListener("samples", (e) => applySamples(JSON.parse(e.data).samples));
  es.addEventListener("end", () => { es.close(); if (ui.stream === es) openStream(); });
  es.onerror = () => {
    ui.streamErrors += 1;
    if (es.readyState === EventSource.CLOSED || ui.streamErrors >= 3) {
      es.close();
      if (ui.stream === es) ui.stream = null;
      startPolling();
      setTimeout(() => { if (!ui.stream) openStream(); }, 15000);
    }
  };
}

function startPolling() {
  if (ui.pollTimer) return;
  setMode("polling");
  ui.pollTimer = setInterval(pollOnce, POLL_MS);
  pollOnce();
}
function stopPolling() {
  if (ui.pollTimer) clearInterval(ui.pollTimer);
  ui.pollTimer = null;
}
async function pollOnce() {
  try {
    const [page, samples] = await Promise.all([
      getJSON(`/v1/messages?${listParams(PAGE)}`),
      getJSON("/v1/explorer/samples?window_s=30"),
    ]);
    ui.cursor = page.latest_change;
    applyMessages(page.messages, true);
    applySamples(samples.samples.filter((s) => s.seq > ui.seq));
    if (ui.mode !== "live") setMode("polling");
  } catch (_) {
    setMode("offline");
  }
}

// ---------------------------------------------------------------- messages
function listParams(limit, before) {
  const p = new URLSearchParams({ limit: String(limit) });
  const st = $("#filter-state").value;
  const ch = $("#filter-chain").value;
  if (st) p.set("state", st);
  if (ch) p.set("chain", ch);
  if (before) p.set("before", before);
  return p;
}

function matchesFilter(m) {
  const st = $("#filter-state").value;
  const ch = $("#filter-chain").value;
  return (!st || m.state === st) && (!ch || m.origin === ch || m.destination === ch);
}

async function reloadMessages() {
  const page = await getJSON(`/v1/messages?${listParams(PAGE)}`);
  ui.messages.clear();
  ui.nextBefore = page.next_before;
  if (ui.cursor === null || page.latest_change > ui.cursor) ui.cursor = page.latest_change;
  applyMessages(page.messages, false);
}

async function loadMore() {
  if (!ui.nextBefore) return;
  const page = await getJSON(`/v1/messages?${listParams(PAGE, ui.nextBefore)}`);
  ui.nextBefore = page.next_before;
  applyMessages(page.messages, false);
}

function applyMessages(rows, live) {
  let changed = false;
  for (const m of rows) {
    const prev = ui.messages.get(m.id);
    if (ui.search && ui.search.ids.has(m.id)) {
      ui.messages.set(m.id, { ...prev, ...m });
      if (live) ui.flash.add(m.id);
      changed = true;
      continue;
    }
    if (!matchesFilter(m)) {
      if (prev) { ui.messages.delete(m.id); changed = true; }
      continue;
    }
    if (!prev || prev.state !== m.state || prev.attempts !== m.attempts || prev.delivery_tx !== m.delivery_tx
        || prev.last_reason !== m.last_reason) {
      if (live) ui.flash.add(m.id);
      changed = true;
    }
    ui.messages.set(m.id, { ...prev, ...m });
  }
  if (!ui.search && ui.messages.size > MAX_ROWS) {
    const keep = sortedRows();
    for (const m of keep.slice(MAX_ROWS)) ui.messages.delete(m.id);
    const last = keep[MAX_ROWS - 1];
    if (last.updated_at !== undefined) ui.nextBefore = `${last.updated_at}~${last.id}`;
  }
  if (changed) renderTable();
  if (live && ui.selected && rows.some((m) => m.id === ui.selected)) showDetail(ui.selected, false);
  if (live && rows.some((m) => m.state === "DELIVERED")) scheduleThroughput();
}

function sortedRows() {
  let rows = [...ui.messages.values()];
  if (ui.search) rows = rows.filter((m) => ui.search.ids.has(m.id));
  rows.sort((a, b) => (b.updated_at || 0) - (a.updated_at || 0) || (b.dispatched_at - a.dispatched_at)
                      || (a.id < b.id ? 1 : -1));
  return rows;
}

function renderTable() {
  const tbody = $("#messages tbody");
  const rows = sortedRows();
  const frag = document.createDocumentFragment();
  for (const m of rows) {
    const tr = el("tr", { "data-id": m.id, "data-state": m.state, class: [
      m.id === ui.selected ? "selected" : "", ui.flash.has(m.id) ? "flash" : ""].join(" ").trim() || null },
      el("td", { class: "hash", title: m.id }, short(m.id)),
      el("td", { class: "route" }, el("span", { class: "chain", "data-chain": m.origin }, m.origin),
         el("span", { class: "arrow" }, "→"), el("span", { class: "chain", "data-chain": m.destination }, m.destination)),
      el("td", { class: "num" }, m.nonce),
      el("td", {}, el("span", { class: `badge state state-${m.state}` }, m.state)),
      el("td", { class: "num" }, m.attempts),
      el("td", { class: "reason", title: m.last_error || m.last_reason || "" }, m.last_reason || ""),
      el("td", { class: "hash", title: m.origin_tx }, short(m.origin_tx)),
      el("td", { class: "hash", title: m.delivery_tx || "" }, short(m.delivery_tx)),
      el("td", { class: "num age", "data-t": m.dispatched_at }, fmtAge(now() - m.dispatched_at)),
    );
    frag.append(tr);
  }
  ui.flash.clear();
  if (!rows.length) {
    frag.append(el("tr", {}, el("td", { class: "empty", colspan: "9" },
      ui.search ? "no messages match this search" : "no messages yet")));
  }
  tbody.replaceChildren(frag);
  const what = ui.search ? `${rows.length} found` : `${rows.length} shown`;
  $("#table-count").textContent = what;
  $("#more").hidden = !!ui.search || !ui.nextBefore;
}

function tickAges() {
  const t = now();
  for (const td of document.querySelectorAll("td.age")) td.textContent = fmtAge(t - Number(td.dataset.t));
  $("#clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
}

// ---------------------------------------------------------------- search
function setStatus(text, kind) {
  const s = $("#search-status");
  s.textContent = text;
  s.className = `status ${kind || ""}`.trim();
  s.dataset.kind = kind || "";
}

async function runSearch(raw) {
  const key = raw.trim();
  if (!key) { clearSearch(); return; }
  if (!HEX32.test(key)) {
    setStatus(`“${key.length > 80 ? key.slice(0, 80) + "…" : key}” is not a 32-byte hex id or transaction hash `
              + "(expected 0x followed by 64 hex digits)", "error");
    return;
  }
  setStatus("searching…", "");
  try {
    const found = await getJSON(`/v1/messages/${encodeURIComponent(key)}`);
    const ids = new Set(found.messages.map((m) => m.id));
    ui.search = { key, ids };
    for (const m of found.messages) ui.messages.set(m.id, { ...ui.messages.get(m.id), ...m });
    const lower = key.toLowerCase();
    const how = found.messages.some((m) => m.id === lower) ? "message id"
      : found.messages.some((m) => m.origin_tx === lower) ? "origin transaction" : "delivery transaction";
    setStatus(`${found.messages.length} message${found.messages.length === 1 ? "" : "s"} for ${how} ${short(lower)}`, "found");
    renderTable();
    if (found.messages.length === 1) showDetail(found.messages[0].id, true);
  } catch (err) {
    if (err.status === 404) setStatus(`not found: no message with id or transaction hash ${key}`, "error");
    else if (err.status === 400) setStatus(`${err.message}`, "error");
    else setStatus(`search failed: ${err.message}`, "error");
  }
}

function clearSearch() {
  ui.search = null;
  $("#search").value = "";
  setStatus("", "");
  reloadMessages().catch((e) => setStatus(`could not load messages: ${e.message}`, "error"));
}

// ---------------------------------------------------------------- detail
async function showDetail(id, scroll) {
  ui.selected = id;
  for (const tr of document.querySelectorAll("#messages tbody tr")) tr.classList.toggle("selected", tr.dataset.id === id);
  let data;
  try {
    data = await getJSON(`/v1/explorer/messages/${id}`);
  } catch (err) {
    $("#detail-body").replaceChildren(el("p", { class: "status error" }, err.message));
    openDetail();
    return;
  }
  const m = data.message;
  const dl = el("dl");
  const add = (k, v, cls) => dl.append(el("dt", {}, k), el("dd", { class: cls || null }, v === null || v === undefined || v === "" ? "—" : v));
  add("id", m.id, "hash");
  add("state", el("span", { class: `badge state state-${m.state}` }, m.state));
  add("route", `${m.origin} (${m.origin_domain}) → ${m.destination} (${m.destination_domain})`);
  add("nonce", m.nonce);
  add("sender", m.sender, "hash");
  add("recipient", m.recipient, "hash");
  add("origin tx", m.origin_tx, "hash");
  add("origin height", m.origin_height);
  add("checkpoint index", m.checkpoint_index);
  add("attempts", m.attempts);
  add("last reason", m.last_reason);
  add(m.state === "DELIVERED" ? "earlier error" : "last error", m.last_error);
  if (OPEN_STATES.includes(m.state)) add("next attempt", m.next_attempt_at ? fmtTime(m.next_attempt_at) : null);
  add("delivery tx", m.delivery_tx, "hash");
  add("delivered height", m.delivered_height);
  const tl = el("ol", { class: "timeline" });
  for (const step of data.timeline) {
    const done = step.at !== null && step.at !== undefined;
    const fail = step.step === "dropped" || step.state === "failed";
    const since = done && step.step !== "dispatched" ? ` (+${(step.at - m.dispatched_at).toFixed(1)} s)` : "";
    const extra = [];
    if (step.chain) extra.push(step.chain);
    if (step.height !== undefined && step.height !== null) extra.push(`height ${step.height}`);
    if (step.checkpoint_index !== undefined && step.checkpoint_index !== null) extra.push(`checkpoint ${step.checkpoint_index}`);
    if (step.state) extra.push(step.state);
    if (step.replaced_by) extra.push(`replaced by ${short(step.replaced_by)}`);
    if (step.reason) extra.push(step.reason);
    tl.append(el("li", { class: fail ? "fail" : done || step.checkpoint_index !== null ? "done" : null, "data-step": step.step },
      el("div", {}, el("span", { class: "step" }, step.step), " ",
         el("span", { class: "when" }, done ? fmtTime(step.at) + since : "time not known to this process")),
      extra.length ? el("div", { class: "extra muted" }, extra.join(" · ")) : null,
      step.tx ? el("div", { class: "extra hash", title: step.tx }, step.tx) : null));
  }
  $("#detail-body").replaceChildren(dl, el("h3", {}, "Timeline"), tl);
  $("#detail-body").dataset.id = m.id;
  openDetail();
  if (scroll) $("#detail").scrollIntoView({ block: "nearest" });
}
function openDetail() { $("#detail").hidden = false; $("#lower").classList.add("with-detail"); drawCharts(); }
function closeDetail() {
  ui.selected = null;
  $("#detail").hidden = true;
  $("#lower").classList.remove("with-detail");
  for (const tr of document.querySelectorAll("#messages tbody tr.selected")) tr.classList.remove("selected");
}

// ---------------------------------------------------------------- chains and samples
function applySamples(samples) {
  if (!samples.length) return;
  for (const s of samples) {
    let round = ui.rounds.length ? ui.rounds[ui.rounds.length - 1] : null;
    if (!round || round.seq !== s.seq) {
      if (round && s.seq < round.seq) continue;
      round = { seq: s.seq, at: s.at, chains: {} };
      ui.rounds.push(round);
    }
    round.chains[s.chain] = s;
    ui.seq = Math.max(ui.seq, s.seq);
  }
  const horizon = now() - 3600;
  while (ui.rounds.length && ui.rounds[0].at < horizon) ui.rounds.shift();
  renderCards();
  renderSummary();
  drawCharts();
}

function latestSample(name) {
  for (let i = ui.rounds.length - 1; i >= 0; i--) if (ui.rounds[i].chains[name]) return ui.rounds[i].chains[name];
  return null;
}

function renderCards() {
  const box = $("#chains");
  const cards = [];
  for (const c of ui.chains) {
    const s = latestSample(c.name);
    const cap = ui.capacity[c.name] || {};
    const healthy = s ? s.healthy : cap.healthy;
    const util = s && s.utilisation !== null ? s.utilisation : cap.utilisation;
    const target = cap.target_utilisation;
    const fill = el("div", { class: "fill" });
    fill.style.width = `${Math.min(100, Math.max(0, (util || 0) * 100))}%`;
    fill.style.background = ui.colour[c.name];
    const meter = el("div", { class: "meter", title: `utilisation ${fmtPct(util)}` }, fill);
    if (target !== undefined) {
      const t = el("div", { class: "target", title: `target ${fmtPct(target)}` });
      t.style.left = `${Math.min(100, target * 100)}%`;
      meter.append(t);
    }
    const spare = s && s.spare_transfers_per_s !== null ? s.spare_transfers_per_s : cap.spare_transfers_per_s;
    const queue = (s && s.queue) || {};
    const swatch = el("span", { class: "swatch" });
    swatch.style.background = ui.colour[c.name];
    const kv = (k, v, key) => el("div", { "data-field": key }, el("span", { class: "k" }, k), el("span", { class: "v" }, v));
    cards.push(el("article", { class: "panel card", "data-chain": c.name, "data-healthy": String(!!healthy) },
      el("div", { class: "card-head" }, swatch, el("span", { class: "name" }, c.name),
         el("span", { class: "muted" }, `domain ${c.domain} · ${c.family}`),
         el("span", { class: `badge ${healthy ? "up" : "down"}` }, healthy === undefined ? "…" : healthy ? "UP" : "DOWN")),
      el("div", { class: "kv" },
         kv("height", s && s.height !== null ? nf.format(s.height) : "—", "height"),
         kv("finalized lag", s && s.finalized_lag !== null ? `${s.finalized_lag} blk` : "—", "lag"),
         kv("utilisation", fmtPct(util), "utilisation"),
         kv("target", fmtPct(target), "target"),
         kv("base fee", fmtFee(s ? s.base_fee : null, c.family), "base_fee"),
         kv("spare", spare === undefined || spare === null ? "—" : `${nf.format(spare)} tx/s`, "spare"),
         kv("block time", cap.block_time_s !== undefined ? `${cap.block_time_s} s` : "—", "block_time"),
         kv("transfer fee", cap.transfer_fee_usd !== undefined ? `$${cap.transfer_fee_usd.toPrecision(2)}` : "—", "fee_usd")),
      meter,
      el("div", { class: "queue", title: "messages to this chain by state" },
         ...STATES.map((st) => el("span", { class: `state-${st}` }, `${st.toLowerCase()} ${queue[st] || 0}`))),
      endpointRow(c.name)));
  }
  box.replaceChildren(...cards);
}

function renderSummary() {
  const round = ui.rounds[ui.rounds.length - 1];
  if (!round) return;
  const totals = Object.fromEntries(STATES.map((s) => [s, 0]));
  for (const s of Object.values(round.chains)) for (const [st, n] of Object.entries(s.queue || {})) totals[st] = (totals[st] || 0) + n;
  $("#summary").replaceChildren(...STATES.map((st) => el("span", { class: "pill", "data-state": st },
    el("span", { class: `state-${st}` }, st.toLowerCase()), el("b", {}, nf.format(totals[st] || 0)))));
}

async function refreshCapacity() {
  try {
    const data = await getJSON("/v1/chains");
    for (const c of data.chains) ui.capacity[c.name] = c;
    renderCards();
    renderBridgeLimits(data.chains);
    drawCharts();
  } catch (_) { /* 503 until the first full round of chain stats: the cards show samples meanwhile */ }
}

let throughputTimer = null;
function scheduleThroughput() {
  if (throughputTimer) return;
  throughputTimer = setTimeout(() => { throughputTimer = null; refreshThroughput(); }, 1500);
}
async function refreshThroughput() {
  try {
    const bucket = ui.windowS > 1800 ? 30 : 10;
    ui.throughput = await getJSON(`/v1/explorer/throughput?window_s=${ui.windowS}&bucket_s=${bucket}`);
    $("#throughput-caption").textContent = `per ${bucket} s`;
    drawCharts();
  } catch (_) { /* keep the last chart */ }
}

// ---------------------------------------------------------------- charts (canvas, drawn here)
function setupCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 400;
  const h = canvas.clientHeight || 180;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function niceCount(v) {
  // a maximum with 4 integer ticks: 4, 8, 20, 40, 80, 200, ...
  let step = 1;
  for (let p = 1; ; p *= 10) {
    const found = [1, 2, 5].map((m) => m * p).find((st) => 4 * st >= v);
    if (found) { step = found; break; }
  }
  return 4 * step;
}

function chartRange() {
  // the selected window, but no earlier than the daemon's sample history or the first data point (a freshly
  // started daemon should not draw 14 empty minutes), and at least two minutes wide
  const t1 = now();
  let first = ui.rounds.length ? ui.rounds[0].at : t1;
  const data = ui.throughput;
  if (data) {
    const names = Object.keys(data.delivered);
    const i = data.buckets.findIndex((_, k) => names.some((n) => data.delivered[n][k] > 0));
    if (i >= 0) first = Math.min(first, data.buckets[i]);
  }
  const t0 = Math.min(Math.max(t1 - ui.windowS, first - 10), t1 - 120);
  return { t0, t1, clipped: t0 > t1 - ui.windowS + 1 };
}

function axes(ctx, box, yMax, yFmt, t0, t1) {
  const grid = css("--grid");
  const muted = css("--muted");
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = muted;
  ctx.strokeStyle = grid;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const y = Math.round(box.y + box.h - (box.h * i) / 4) + 0.5;
    ctx.beginPath(); ctx.moveTo(box.x, y); ctx.lineTo(box.x + box.w, y); ctx.stroke();
    ctx.fillText(yFmt(v), box.x - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  const span = t1 - t0;
  const step = [10, 30, 60, 120, 300, 600, 900, 1800, 3600].find((s) => span / s <= 6) || 3600;
  for (let t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
    const x = box.x + ((t - t0) / span) * box.w;
    const d = new Date(t * 1000);
    const label = d.toLocaleTimeString([], { hour12: false, hour: "2-digit", minute: "2-digit",
                                            second: step < 60 ? "2-digit" : undefined });
    const half = ctx.measureText(label).width / 2;
    if (x - half < box.x - 30 || x + half > box.x + box.w + 8) continue;  // would be cut at the canvas edge
    ctx.fillText(label, x, box.y + box.h + 5);
  }
}

function emptyNote(ctx, w, h, text) {
  ctx.fillStyle = css("--muted");
  ctx.font = "12px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.fillText(text, w / 2, h / 2);
}

function legend(id, items) {
  $(id).replaceChildren(...items.map(([name, colour, extra]) => {
    const s = el("span", {}, extra ? `${name} ${extra}` : name);
    s.style.setProperty("--swatch", colour);
    return s;
  }));
}

function drawThroughput() {
  const canvas = $("#chart-throughput");
  const { ctx, w, h } = setupCanvas(canvas);
  const data = ui.throughput;
  if (!data) { emptyNote(ctx, w, h, "loading…"); return; }
  const kind = $("#throughput-kind").value;  // delivered (per destination) or dispatched (per origin)
  const series = data[kind];
  const names = ui.chains.map((c) => c.name).filter((n) => n in series)
    .concat(Object.keys(series).filter((n) => !ui.colour[n]));
  const { t0, t1 } = chartRange();
  const n = data.buckets.length;
  const totals = new Array(n).fill(0);
  for (const name of names) series[name].forEach((v, i) => { totals[i] += v; });
  const visible = totals.filter((_, i) => data.buckets[i] + data.bucket_s > t0);
  const yMax = niceCount(Math.max(1, ...visible));
  const box = { x: 40, y: 8, w: w - 50, h: h - 30 };
  axes(ctx, box, yMax, (v) => String(Math.round(v)), t0, t1);
  const x = (t) => box.x + ((Math.min(Math.max(t, t0), t1) - t0) / (t1 - t0)) * box.w;
  let bars = 0;
  for (let i = 0; i < n; i++) {
    const left = x(data.buckets[i]);
    const right = x(data.buckets[i] + data.bucket_s);
    if (right - left < 0.5) continue;
    const gap = Math.min(2, (right - left) * 0.2);
    let y = box.y + box.h;
    for (const name of names) {
      const v = series[name][i];
      if (!v) continue;
      const bh = (v / yMax) * box.h;
      ctx.fillStyle = ui.colour[name] || css("--muted");
      ctx.fillRect(left + gap / 2, y - bh, Math.max(1, right - left - gap), bh);
      y -= bh;
      bars += 1;
    }
  }
  canvas.dataset.kind = kind;
  canvas.dataset.bars = String(bars);
  canvas.dataset.total = String(visible.reduce((a, b) => a + b, 0));
  if (!bars) emptyNote(ctx, w, h, kind === "delivered" ? "no deliveries in this window" : "no dispatches in this window");
  legend("#legend-throughput", names.map((nm) => [nm, ui.colour[nm] || css("--muted"), `(${data.totals[kind][nm] || 0})`]));
}

function windowRounds() {
  const { t0 } = chartRange();
  return ui.rounds.filter((r) => r.at >= t0);
}

function drawQueue() {
  const canvas = $("#chart-queue");
  const { ctx, w, h } = setupCanvas(canvas);
  const rounds = windowRounds();
  canvas.dataset.rounds = String(rounds.length);
  if (!rounds.length) { emptyNote(ctx, w, h, "waiting for the first samples…"); return; }
  const stateColour = Object.fromEntries(STATES.map((s) => [s, css(`--s-${s.toLowerCase()}`)]));
  const depth = rounds.map((r) => {
    const d = Object.fromEntries(OPEN_STATES.map((s) => [s, 0]));
    for (const s of Object.values(r.chains)) for (const st of OPEN_STATES) d[st] += (s.queue || {})[st] || 0;
    return d;
  });
  const yMax = niceCount(Math.max(1, ...depth.map((d) => OPEN_STATES.reduce((a, s) => a + d[s], 0))));
  const { t0, t1 } = chartRange();
  const box = { x: 40, y: 8, w: w - 50, h: h - 30 };
  axes(ctx, box, yMax, (v) => String(Math.round(v)), t0, t1);
  const x = (t) => box.x + ((t - t0) / (t1 - t0)) * box.w;
  const y = (v) => box.y + box.h - (v / yMax) * box.h;
  // stacked areas, bottom state first
  const base = rounds.map(() => 0);
  let nonzero = 0;
  for (const st of OPEN_STATES) {
    const top = depth.map((d, i) => base[i] + d[st]);
    if (top.some((v, i) => v > base[i])) nonzero += 1;
    ctx.beginPath();
    rounds.forEach((r, i) => (i ? ctx.lineTo(x(r.at), y(top[i])) : ctx.moveTo(x(r.at), y(top[i]))));
    for (let i = rounds.length - 1; i >= 0; i--) ctx.lineTo(x(rounds[i].at), y(base[i]));
    ctx.closePath();
    ctx.fillStyle = stateColour[st];
    ctx.globalAlpha = 0.55;
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.strokeStyle = stateColour[st];
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    rounds.forEach((r, i) => (i ? ctx.lineTo(x(r.at), y(top[i])) : ctx.moveTo(x(r.at), y(top[i]))));
    ctx.stroke();
    top.forEach((v, i) => { base[i] = v; });
  }
  canvas.dataset.states = String(nonzero);
  const last = depth[depth.length - 1];
  legend("#legend-queue", OPEN_STATES.map((s) => [s.toLowerCase(), stateColour[s], `(${last[s]})`]));
}

function drawCapacity() {
  const canvas = $("#chart-utilisation");
  const { ctx, w, h } = setupCanvas(canvas);
  const metric = $("#capacity-kind").value;  // utilisation (of the gas limit) or spare_transfers_per_s
  const spare = metric === "spare_transfers_per_s";
  $("#capacity-caption").textContent = spare ? "transfers/s the routing API can still admit at the target"
    : "share of block gas limit; dashed: fee-market target";
  const rounds = windowRounds();
  canvas.dataset.points = "0";
  canvas.dataset.metric = metric;
  if (!rounds.length) { emptyNote(ctx, w, h, "waiting for the first samples…"); return; }
  const { t0, t1 } = chartRange();
  let peak = 0;
  for (const r of rounds) for (const s of Object.values(r.chains)) if (s[metric] !== null) peak = Math.max(peak, s[metric]);
  // scaled to the load (a quiet chain is not a flat line on the floor); the dashed targets show when in range
  const yMax = spare ? niceMax(Math.max(1, peak * 1.1)) : Math.min(1, niceMax(Math.max(0.01, peak * 1.25)));
  const digits = yMax >= 0.2 ? 0 : yMax >= 0.02 ? 1 : 2;
  const fmt = spare ? (v) => nf.format(Math.round(v)) : (v) => `${(v * 100).toFixed(digits)}%`;
  const box = { x: spare ? 52 : 48, y: 8, w: w - (spare ? 62 : 58), h: h - 30 };
  axes(ctx, box, yMax, fmt, t0, t1);
  const x = (t) => box.x + ((t - t0) / (t1 - t0)) * box.w;
  const y = (v) => box.y + box.h - (Math.min(v, yMax) / yMax) * box.h;
  let points = 0;
  for (const c of ui.chains) {
    const colour = ui.colour[c.name];
    const target = (ui.capacity[c.name] || {}).target_utilisation;
    if (!spare && target !== undefined && target <= yMax) {
      ctx.setLineDash([4, 4]);
      ctx.strokeStyle = colour;
      ctx.globalAlpha = 0.5;
      ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(box.x, y(target)); ctx.lineTo(box.x + box.w, y(target)); ctx.stroke();
      ctx.setLineDash([]);
      ctx.globalAlpha = 1;
    }
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2;
    ctx.beginPath();
    let started = false;
    for (const r of rounds) {
      const s = r.chains[c.name];
      if (!s || s[metric] === null) { started = false; continue; }
      if (started) ctx.lineTo(x(r.at), y(s[metric])); else ctx.moveTo(x(r.at), y(s[metric]));
      started = true;
      points += 1;
    }
    ctx.stroke();
  }
  canvas.dataset.points = String(points);
  const above = spare ? [] : [...new Set(ui.chains.map((c) => (ui.capacity[c.name] || {}).target_utilisation)
    .filter((v) => v !== undefined && v > yMax))];
  if (above.length) {
    ctx.fillStyle = css("--muted");
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "top";
    ctx.fillText(`target ${above.map((v) => fmtPct(v)).join(", ")} (off scale ↑)`, box.x + box.w, box.y + 2);
  }
  legend("#legend-utilisation", ui.chains.map((c) => {
    const s = latestSample(c.name);
    const v = s ? s[metric] : null;
    return [c.name, ui.colour[c.name], v === null ? "" : spare ? `(${nf.format(v)}/s)` : `(${fmtPct(v)})`];
  }));
}

let drawPending = false;
function drawCharts() {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    if (!ui.chains.length) return;
    drawThroughput();
    drawQueue();
    drawCapacity();
  });
}

// ---------------------------------------------------------------- RPC endpoint health (chain cards)
// relayer_rpc_endpoint_up{chain,endpoint} from /metrics: the daemon's EndpointHealth, by endpoint index (0 is
// rpc_url, then fallback_rpc_urls in order). URLs are never read or shown: they may hold a provider's API key.
const ENDPOINTS_MS = 5000;

function parseEndpointHealth(text) {
  const found = {};
  for (const line of text.split("\n")) {
    const m = /^relayer_rpc_endpoint_up\{([^}]*)\}\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    const i = Number(labels.endpoint);
    if (!labels.chain || !Number.isInteger(i) || i < 0 || i > 63) continue;
    (found[labels.chain] = found[labels.chain] || [])[i] = Number(m[2]) === 1;
  }
  return found;
}

async function refreshEndpoints() {
  try {
    const res = await fetch("/metrics", { headers: { Accept: "text/plain" }, cache: "no-store" });
    if (!res.ok) return;
    const found = parseEndpointHealth(await res.text());
    if (JSON.stringify(found) === JSON.stringify(ui.endpoints)) return;
    ui.endpoints = found;
    renderCards();
  } catch (_) { /* the cards keep the last known endpoint health */ }
}

function endpointRow(chain) {
  const ups = ui.endpoints[chain];
  if (!ups || ups.length < 2) return null;  // one endpoint: the card's UP/DOWN already says it
  const role = (i) => (i === 0 ? "rpc_url" : `fallback_rpc_urls[${i - 1}]`);
  return el("div", { class: "endpoints", "data-field": "endpoints" },
    el("span", { class: "k" }, "rpc endpoints"),
    ...ups.map((up, i) => el("span", { class: `badge ${up ? "up" : "down"}`, "data-endpoint": String(i),
      "data-up": String(!!up), title: `endpoint ${i} (${role(i)}): ${up ? "its last request succeeded" : "its last request failed"}` },
      `#${i} ${up ? "up" : "down"}`)));
}

// ---------------------------------------------------------------- profit and loss per route (GET /v1/routes/profit)
// What senders paid the origins' paymasters against what the route's deliveries spent: public on chain, no key.
const PROFIT_MS = 15000;

function usd(x) {
  return `${x < 0 ? "-" : ""}$${Math.abs(x).toFixed(Math.abs(x) >= 1 ? 2 : 6)}`;
}

async function refreshProfit() {
  try {
    const { routes } = await getJSON("/v1/routes/profit");
    $("#profit").hidden = routes.length === 0;
    $("#profit-table tbody").replaceChildren(...routes.map((r) => el("tr",
      { "data-route": `${r.origin}->${r.destination}` },
      el("td", {}, `${r.origin} → ${r.destination}`), el("td", { class: "num" }, String(r.payments)),
      el("td", { class: "num", "data-field": "fees" }, usd(r.fees_collected_usd)),
      el("td", { class: "num", "data-field": "gas" }, usd(r.gas_spent_usd)),
      el("td", { class: `num ${r.profit_usd < 0 ? "loss" : "gain"}`, "data-field": "profit" }, usd(r.profit_usd)))));
  } catch (_) { /* the table keeps its last figures */ }
}

// ---------------------------------------------------------------- bridge rate limits (GET /v1/chains: bridge_limits)
// Per chain, its token bridge's buckets by remote chain, token and direction, as exact decimal strings of whole tokens;
// a chain whose limits could not be read says so (never shown as no limit).
function bridgeLimitRows(c) {
  const bl = c.bridge_limits;
  if (!bl || bl.status === "none") return [];
  const cell = (field, v) => el("td", { class: "num", "data-field": field }, v === undefined ? "—" : String(v));
  if (bl.status === "unknown") {
    return [el("tr", { "data-chain": c.name, "data-status": "unknown" }, el("td", {}, c.name),
      el("td", { colspan: "7", class: "muted", title: bl.error || "" }, "unknown: the limits could not be read"))];
  }
  const rows = [];
  for (const l of bl.limits) {
    for (const dir of ["outbound", "inbound"]) {
      const b = l[dir];
      if (!b.limited && !(dir === "inbound" && b.queued_transfers)) continue;
      rows.push(el("tr", { "data-chain": c.name, "data-remote": l.remote, "data-token": l.token, "data-direction": dir },
        el("td", {}, c.name), el("td", {}, l.remote), el("td", {}, l.token), el("td", {}, dir),
        cell("capacity", b.limited ? b.capacity : "no limit"), cell("refill", b.refill_per_s), cell("room", b.room),
        cell("queued", dir === "inbound" ? `${b.queued} (${b.queued_transfers})` : undefined)));
    }
  }
  return rows;
}

function renderBridgeLimits(chains) {
  const rows = chains.flatMap(bridgeLimitRows);
  $("#bridge-limits").hidden = rows.length === 0;
  $("#bridge-limits-table tbody").replaceChildren(...rows);
}

// ---------------------------------------------------------------- views (messages | stuck)
function showView(view) {
  ui.view = view;
  for (const b of document.querySelectorAll(".tabs [role=tab]")) b.setAttribute("aria-selected", String(b.dataset.view === view));
  $("#lower").hidden = view !== "messages";
  $("#stuck").hidden = view !== "stuck";
  $("#integrator").hidden = view !== "integrator";  // integrators.js: #integrator/CODE, the public report
  if (view === "stuck") { history.replaceState(null, "", "#stuck"); renderStuckView(); loadStuck(); }
  else if (view === "integrator") window.Integrators.show();
  else { history.replaceState(null, "", location.pathname + location.search); drawCharts(); }
}

// ---------------------------------------------------------------- stuck messages (the admin API, behind its key)
// The admin key lives in this tab's sessionStorage only: never in the URL, never in localStorage, never logged.
const KEY_SLOT = "explorer-admin-key";
const STUCK_MS = 5000;
const NOTE_MAX = 500;

function adminKey() {
  try { return sessionStorage.getItem(KEY_SLOT) || ""; } catch (_) { return ""; }
}
function storeAdminKey(key) {
  try { sessionStorage.setItem(KEY_SLOT, key); } catch (_) { /* storage off: the key cannot be kept */ }
}

function adminStatus(text, kind) {
  const s = $("#admin-status");
  s.textContent = text;
  s.className = `status ${kind || ""}`.trim();
  s.dataset.kind = kind || "";
}

const REFUSED = { 400: "bad input", 401: "wrong or missing admin key", 403: "forbidden", 404: "not found",
                  409: "conflict" };

function adminError(status, body) {
  const detail = body && body.detail;
  let text = typeof detail === "string" ? detail : detail && (detail.error || JSON.stringify(detail));
  if (detail && detail.field && detail.error) text = `${detail.field}: ${detail.error}`;
  const err = new Error(`${status} ${REFUSED[status] || "error"}: ${text || "no detail"}`);
  err.status = status;
  return err;
}

async function adminRequest(method, path, body) {
  const key = adminKey();
  if (!key) throw Object.assign(new Error("the admin key is needed"), { status: 0 });
  const headers = { Accept: "application/json", Authorization: `Bearer ${key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(`/admin/v1${path}`, { method, headers, cache: "no-store",
                                                body: body === undefined ? undefined : JSON.stringify(body) });
  let answer = null;
  try { answer = await res.json(); } catch (_) { answer = null; }
  if (!res.ok) throw adminError(res.status, answer);
  return answer;
}

function renderStuckView() {
  const keyed = !!adminKey();
  $("#stuck-needs-key").hidden = keyed;
  $("#stuck-content").hidden = !keyed;
  $("#admin-forget").disabled = !keyed;
  $("#stuck").dataset.keyed = String(keyed);
}

async function loadStuck() {
  if (!adminKey()) return;
  if (ui.admin.loading) { ui.admin.again = true; return; }  // once more after the read under way (it may be older)
  ui.admin.loading = true;
  try {
    const wait = encodeURIComponent($("#stuck-min-wait").value);
    const [stuck, paused] = await Promise.all([adminRequest("GET", `/messages/stuck?min_wait_s=${wait}&limit=200`),
                                               adminRequest("GET", "/routes/paused")]);
    await learnStatuses(stuck.messages);
    ui.admin.stuck = stuck.messages;
    ui.admin.paused = paused.routes;
    ui.admin.fetchedAt = now();
    renderStuck();
    renderPaused();
    if ($("#admin-status").dataset.kind === "error" && ui.admin.refused) adminStatus("", "");
    ui.admin.refused = false;
  } catch (err) {
    ui.admin.refused = err.status === 401 || err.status === 403;  // no retries until another key is given
    adminStatus(err.message, "error");
    if (ui.admin.refused) { ui.admin.stuck = []; ui.admin.paused = []; renderStuck(); renderPaused(); }
  } finally {
    ui.admin.loading = false;
  }
  if (ui.admin.again) { ui.admin.again = false; await loadStuck(); }
}

function autoRefreshStuck() {
  if (ui.view !== "stuck") return;
  const view = $("#stuck");
  view.dataset.ticks = String(Number(view.dataset.ticks || 0) + 1);  // each look, sent or not (tests read it)
  if (adminKey() && !ui.admin.refused && !ui.admin.dropping && !ui.admin.executing) loadStuck();
}

// the one status and substate callers see (as GET /v1/messages/{id} gives them): the admin API's stuck list carries them
async function learnStatuses(list) {
  const cache = ui.admin.statuses;
  for (const m of list) cache.set(m.id, { state: m.state, reason: m.reason, status: m.status, substate: m.substate });
}

function statusCell(m) {
  const c = ui.admin.statuses.get(m.id);
  const text = c && c.state === m.state && c.reason === m.reason ? `${c.status}${c.substate ? ` · ${c.substate}` : ""}` : "…";
  return el("td", { class: "status-cell", title: `pipeline state ${m.state}` },
    el("span", { class: `badge state state-${m.state}` }, m.state), " ", el("span", { class: "substate" }, text));
}

function causeCell(m) {
  return el("td", { class: "reason", title: m.error || m.reason || "" },
    el("b", {}, m.reason || "no failure yet (waiting long)"), m.error ? el("span", { class: "error" }, m.error) : null);
}

function actionsCell(m) {
  const open = m.state === "DISPATCHED" || m.state === "ATTESTED";
  return el("td", { class: "actions" }, el("div", { class: "buttons" },
    m.state !== "SUBMITTED" ? el("button", { type: "button", "data-action": "retry", "data-id": m.id,
      title: "back to delivery now, attempts reset" }, "Retry") : el("span", { class: "muted" }, "in flight"),
    open ? el("button", { type: "button", "data-action": "drop", "data-id": m.id,
      title: "end it DROPPED(operator_dropped), with a note" }, "Drop…") : null,
    executable(m) ? el("button", { type: "button", "data-action": "execute", "data-id": m.id,
      title: "deliver it now in a transaction of its own, with the gas limit you give" }, "Execute…") : null));
}

// what the admin API's manual execution takes: an open message, or a dropped one its origin still proves
const UNDELIVERABLE = new Set(["origin_reorged", "unknown_destination", "malformed"]);
function executable(m) {
  return m.state === "DISPATCHED" || m.state === "ATTESTED" || (m.state === "DROPPED" && !UNDELIVERABLE.has(m.reason));
}

function executeRow(id) {
  const form = el("form", { class: "execute-form", "data-id": id, novalidate: "" },  // the page says what is wrong
    el("input", { type: "number", name: "gas_limit", min: "21000", max: "100000000", step: "1",
                  placeholder: "gas limit, e.g. 3000000", "aria-label": "gas limit of the execution" }),
    el("button", { type: "submit" }, "Execute now"),
    el("button", { type: "button", class: "ghost", "data-action": "cancel-execute" }, "Cancel"));
  return el("tr", { class: "execute-row", "data-execute": id }, el("td", { colspan: "7" }, form));
}

function stuckRow(m) {
  const since = (ui.admin.fetchedAt || now()) - m.waited_s;
  return el("tr", { "data-id": m.id, "data-state": m.state, "data-reason": m.reason || "" },
    el("td", { class: "hash", title: m.id }, short(m.id)),
    el("td", { class: "route" }, m.origin, el("span", { class: "arrow" }, "→"), m.destination),
    statusCell(m), causeCell(m),
    el("td", { class: "num age", "data-t": String(since) }, fmtAge(now() - since)),
    el("td", { class: "num" }, m.attempts), actionsCell(m));
}

function dropRow(id) {
  const form = el("form", { class: "drop-form", "data-id": id },
    el("input", { type: "text", name: "note", maxlength: String(NOTE_MAX), placeholder: "why (required, kept with the message)",
                  spellcheck: "false", autocomplete: "off", "aria-label": "note for the drop" }),
    el("button", { type: "submit" }, "Drop message"),
    el("button", { type: "button", class: "ghost", "data-action": "cancel-drop" }, "Cancel"));
  return el("tr", { class: "drop-row", "data-drop": id }, el("td", { colspan: "7" }, form));
}

function renderStuck() {
  const rows = [];
  for (const m of ui.admin.stuck) {
    rows.push(stuckRow(m));
    if (ui.admin.dropping === m.id) rows.push(dropRow(m.id));
    if (ui.admin.executing === m.id) rows.push(executeRow(m.id));
  }
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "7" }, "no stuck messages")));
  $("#stuck-table tbody").replaceChildren(...rows);
  const count = $("#tab-stuck");
  count.replaceChildren("Stuck", ui.admin.stuck.length ? el("span", { class: "count" }, String(ui.admin.stuck.length)) : "");
}

function renderPaused() {
  const rows = ui.admin.paused.map((r) => el("tr", { "data-route": `${r.origin}/${r.destination}` },
    el("td", { class: "route" }, r.origin, el("span", { class: "arrow" }, "→"), r.destination),
    el("td", { class: "note-cell" }, r.note || "—"),
    el("td", { class: "actions" }, el("button", { type: "button", "data-action": "resume", "data-origin": r.origin,
                                                  "data-destination": r.destination }, "Resume"))));
  if (!rows.length) rows.push(el("tr", {}, el("td", { class: "empty", colspan: "3" }, "no route is paused")));
  $("#paused-routes tbody").replaceChildren(...rows);
}

function fillRouteSelects() {
  for (const id of ["#pause-origin", "#pause-destination"]) {
    $(id).replaceChildren(...ui.chains.map((c) => el("option", { value: c.name }, c.name)));
  }
  if (ui.chains.length > 1) $("#pause-destination").value = ui.chains[1].name;
}

function describe(v) { return `${v.status}${v.substate ? ` · ${v.substate}` : ""}`; }

async function adminAction(run, done) {
  adminStatus("working…", "");
  try {
    adminStatus(done(await run()), "ok");
  } catch (err) {
    adminStatus(err.message, "error");
  }
  await loadStuck();
}

function retryMessage(id) {
  return adminAction(() => adminRequest("POST", `/messages/${id}/retry`),
                     (v) => `retried ${short(id)}: now ${describe(v)}`);
}

function dropMessage(id, note) {
  if (!note.trim()) { adminStatus("a note is required to drop a message: say why (kept with the message)", "error"); return; }
  ui.admin.dropping = null;
  return adminAction(() => adminRequest("POST", `/messages/${id}/drop`, { note }),
                     (v) => `dropped ${short(id)}: now ${describe(v)}, note “${v.last_error || note}”`);
}

function executeMessage(id, text) {
  const gas = Number(text);
  if (!Number.isInteger(gas) || gas < 21000 || gas > 100000000) {
    adminStatus("the gas limit must be a whole number from 21000 to 100000000", "error");
    return;
  }
  ui.admin.executing = null;
  return adminAction(() => adminRequest("POST", `/messages/${id}/execute`, { gas_limit: gas }),
                     (v) => `executing ${short(id)} with ${v.gas_limit} gas in ${short(v.tx)}`);
}

function pauseRoute(origin, destination, note) {
  if (!note.trim()) { adminStatus("a note is required to pause a route: say why (kept with the pause)", "error"); return; }
  $("#pause-note").value = "";
  return adminAction(() => adminRequest("POST", `/routes/${encodeURIComponent(origin)}/${encodeURIComponent(destination)}/pause`, { note }),
                     (v) => `paused ${v.origin} → ${v.destination}: “${v.note}”`);
}

function resumeRoute(origin, destination) {
  return adminAction(() => adminRequest("POST", `/routes/${encodeURIComponent(origin)}/${encodeURIComponent(destination)}/resume`),
                     (v) => `resumed ${v.origin} → ${v.destination}${v.was_paused ? "" : " (it was not paused)"}`);
}

function useKey(e) {
  e.preventDefault();
  const input = $("#admin-key");
  const key = input.value.trim();
  input.value = "";  // the key stays in sessionStorage only, not in the page
  if (!key) { adminStatus("enter the admin key first", "error"); return; }
  storeAdminKey(key);
  ui.admin.refused = false;
  adminStatus("key kept for this tab only (sessionStorage)", "ok");
  renderStuckView();
  loadStuck();
}

function forgetKey() {
  try { sessionStorage.removeItem(KEY_SLOT); } catch (_) { /* nothing kept */ }
  Object.assign(ui.admin, { stuck: [], paused: [], refused: false, dropping: null, executing: null });
  renderStuck();
  renderPaused();
  renderStuckView();
  adminStatus("admin key forgotten", "ok");
}

function onStuckClick(e) {
  const b = e.target.closest("button[data-action]");
  if (!b) return;
  const action = b.dataset.action;
  if (action === "retry") retryMessage(b.dataset.id);
  else if (action === "drop") { ui.admin.dropping = b.dataset.id; renderStuck(); $(".drop-form input").focus(); }
  else if (action === "cancel-drop") { ui.admin.dropping = null; renderStuck(); }
  else if (action === "execute") { ui.admin.executing = b.dataset.id; renderStuck(); $(".execute-form input").focus(); }
  else if (action === "cancel-execute") { ui.admin.executing = null; renderStuck(); }
  else if (action === "resume") resumeRoute(b.dataset.origin, b.dataset.destination);
}

function onStuckSubmit(e) {
  const form = e.target.closest("form.drop-form, form.execute-form");
  if (!form) return;
  e.preventDefault();
  if (form.classList.contains("execute-form")) executeMessage(form.dataset.id, form.querySelector("input").value);
  else dropMessage(form.dataset.id, form.querySelector("input").value);
}

function wireStuckView() {
  for (const b of document.querySelectorAll(".tabs [role=tab]")) b.addEventListener("click", () => showView(b.dataset.view));
  $("#admin-key-form").addEventListener("submit", useKey);
  $("#admin-forget").addEventListener("click", forgetKey);
  $("#stuck-refresh").addEventListener("click", () => { ui.admin.refused = false; loadStuck(); });
  $("#stuck-min-wait").addEventListener("change", () => loadStuck());
  $("#stuck").addEventListener("click", onStuckClick);
  $("#stuck").addEventListener("submit", onStuckSubmit);
  $("#pause-form").addEventListener("submit", (e) => {
    e.preventDefault();
    pauseRoute($("#pause-origin").value, $("#pause-destination").value, $("#pause-note").value);
  });
  renderStuckView();
  renderStuck();
  renderPaused();
}

// ---------------------------------------------------------------- start
async function start() {
  applyTheme(initialTheme());
  $("#theme").addEventListener("click", () => applyTheme(document.documentElement.dataset.theme === "dark" ? "light" : "dark"));
  $("#filter-state").addEventListener("change", () => { ui.search = null; setStatus("", ""); reloadMessages(); });
  $("#filter-chain").addEventListener("change", () => { ui.search = null; setStatus("", ""); reloadMessages(); });
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch($("#search").value); });
  $("#search-clear").addEventListener("click", clearSearch);
  $("#more").addEventListener("click", () => loadMore());
  $("#detail-close").addEventListener("click", closeDetail);
  $("#messages tbody").addEventListener("click", (e) => {
    const tr = e.target.closest("tr[data-id]");
    if (tr) showDetail(tr.dataset.id, true);
  });
  $("#throughput-kind").addEventListener("change", drawCharts);
  $("#capacity-kind").addEventListener("change", drawCharts);
  $("#window").addEventListener("change", (e) => { ui.windowS = Number(e.target.value); refreshThroughput(); drawCharts(); });
  window.addEventListener("resize", drawCharts);
  wireStuckView();

  try {
    const samples = await getJSON("/v1/explorer/samples?window_s=3600");
    ui.chains = samples.chains;
    ui.chains.forEach((c, i) => { ui.colour[c.name] = PALETTE[i % PALETTE.length]; });
    const sel = $("#filter-chain");
    for (const c of ui.chains) sel.append(el("option", { value: c.name }, c.name));
    fillRouteSelects();
    ui.seq = 0;
    applySamples(samples.samples);
    ui.seq = Math.max(ui.seq, samples.last_seq);
    renderCards();
    await Promise.all([reloadMessages(), refreshCapacity(), refreshThroughput()]);
  } catch (err) {
    setMode("offline");
    setStatus(`could not load the explorer data: ${err.message}`, "error");
  }
  openStream();
  setInterval(tickAges, 1000);
  setInterval(refreshThroughput, 10000);
  setInterval(refreshCapacity, 10000);
  setInterval(drawCharts, 5000);  // time axes move on even when nothing changes
  setInterval(refreshEndpoints, ENDPOINTS_MS);
  setInterval(refreshProfit, PROFIT_MS);
  refreshProfit();
  setInterval(autoRefreshStuck, STUCK_MS);
  refreshEndpoints();
  showView(location.hash === "#stuck" ? "stuck" : location.hash.startsWith("#integrator") ? "integrator" : "messages");
  tickAges();
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", start);
