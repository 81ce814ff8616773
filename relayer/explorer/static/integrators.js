// The explorer's integrator page (issue 15): /explorer#integrator/CODE.
// Everything comes from the public report, GET /v1/integrators/{code}/report: quotes served, intents that followed
// (conversion, per UTC day), volume and fees by chain and day, rewards paid (each payout with its transaction hash),
// under way and pending (and why it waits, when an epoch held it back). No key: the report holds only what is public
// on chain. The page never builds HTML from text: every value goes in as a text node.
"use strict";

(function () {
  const CODE = /^[a-z0-9_-]{1,32}$/;
  const REFRESH_MS = 5000;
  const state = { code: null, timer: null, loading: false };
  const q = (sel) => document.querySelector(sel);

  function node(tag, attrs, ...children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") n.className = v; else n.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      n.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return n;
  }

  function codeFromHash() {
    const m = /^#integrator\/(.*)$/.exec(location.hash);
    return m ? decodeURIComponent(m[1]) : null;
  }

  function say(text, kind) {
    const s = q("#integrator-status");
    s.textContent = text;
    s.dataset.kind = kind || "";
  }

  function usd(x) { return x === null || x === undefined ? "—" : `$${Number(x).toFixed(4)}`; }
  function pct(x) { return x === null || x === undefined ? "—" : `${(x * 100).toFixed(1)} %`; }
  function hashCell(h) { return node("td", { class: "hash", title: h || "", "data-field": "tx" }, h || "—"); }

  function rows(sel, list) { q(sel).replaceChildren(...list); }

  function render(r) {
    const root = q("#integrator-content");
    root.hidden = false;
    root.dataset.code = r.integrator;
    const rw = r.rewards || { by_chain: {}, payouts: [], share: String(r.fee_share), registered: false };
    q("#integrator-title").textContent = `Integrator ${r.integrator}`;
    const conv = r.conversion || { rate: null };
    const stats = [["quotes served", (r.quotes || { total: 0 }).total, "quotes"],
      ["intents counted", r.intents, "intents"], ["conversion", pct(conv.rate), "conversion"],
      ["fees paid", usd(r.fees_usd), "fees"], ["share", rw.share, "share"],
      ["registered", rw.registered ? "yes" : "no", "registered"]];
    rows("#integrator-stats", stats.map(([k, v, f]) => node("div", { class: "stat", "data-field": f },
      node("span", { class: "muted" }, k), node("strong", null, String(v)))));
    rows("#integrator-rewards tbody", Object.entries(rw.by_chain).map(([chain, b]) => node("tr", { "data-chain": chain },
      node("td", null, chain), node("td", { class: "num", "data-field": "paid" }, b.paid),
      node("td", { class: "num", "data-field": "in_flight" }, b.in_flight),
      node("td", { class: "num", "data-field": "pending" }, b.pending),
      node("td", { class: "hash", title: b.payout_address || "" }, b.payout_address || "—"),
      node("td", { class: "muted", "data-field": "why" },
        b.pending_reason || (b.payable ? "paid on chain each epoch" : b.why_not)))));
    rows("#integrator-payouts tbody", rw.payouts.slice().reverse().map((p) => node("tr", { "data-payout": p.id },
      node("td", null, new Date(p.created_at * 1000).toISOString().replace("T", " ").slice(0, 19)),
      node("td", null, p.chain), node("td", { class: "num", "data-field": "amount" }, p.amount),
      node("td", { class: "num" }, p.intents), node("td", { "data-field": "status" }, p.status), hashCell(p.tx_hash))));
    rows("#integrator-days tbody", (r.by_chain_day || []).map((d) => node("tr", null,
      node("td", null, d.day), node("td", null, d.chain), node("td", { class: "num" }, d.intents),
      node("td", { class: "num" }, d.volume), node("td", { class: "num" }, d.fee_paid),
      node("td", { class: "num" }, usd(d.fees_usd)))));
    const byDay = (conv && conv.by_day) || {};
    rows("#integrator-conversion tbody", Object.entries(byDay).map(([day, c]) => node("tr", null,
      node("td", null, day), node("td", { class: "num" }, c.quotes), node("td", { class: "num" }, c.intents),
      node("td", { class: "num" }, pct(c.rate)))));
    q("#integrator-empty").hidden = rw.payouts.length > 0;
  }

  async function load() {
    if (!state.code || state.loading) return;
    state.loading = true;
    try {
      const res = await fetch(`/v1/integrators/${encodeURIComponent(state.code)}/report`,
        { headers: { Accept: "application/json" } });
      const body = await res.json().catch(() => null);
      if (!res.ok) {
        const d = body && body.detail;
        say(`report refused (${res.status}): ${(d && (d.error || JSON.stringify(d))) || res.statusText}`, "error");
        return;
      }
      render(body);
      say(`updated ${new Date().toLocaleTimeString()}`, "ok");
      q("#integrator").dataset.loaded = String(Number(q("#integrator").dataset.loaded || 0) + 1);
    } catch (err) {
      say(`could not load the report: ${err.message}`, "error");
    } finally {
      state.loading = false;
    }
  }

  function open(code) {
    if (!CODE.test(code)) { say("an integrator code is 1-32 of a-z, 0-9, _ and -", "error"); return; }
    state.code = code;
    q("#integrator-code").value = code;
    history.replaceState(null, "", `#integrator/${encodeURIComponent(code)}`);
    load();
  }

  // called by app.js's showView when the Integrators view is shown (a tab, or a #integrator/CODE address)
  function show() {
    const code = codeFromHash() || state.code;
    if (code) open(code);
    else { q("#integrator-content").hidden = true; say("type an integrator code", ""); }
    if (!state.timer) state.timer = setInterval(() => { if (!q("#integrator").hidden) load(); }, REFRESH_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    q("#integrator-form").addEventListener("submit", (e) => { e.preventDefault(); open(q("#integrator-code").value.trim()); });
    window.addEventListener("hashchange", () => {
      const code = codeFromHash();
      if (code && typeof window.showView === "function") window.showView("integrator");
    });
  });
  window.Integrators = { show, codeFromHash };
})();
