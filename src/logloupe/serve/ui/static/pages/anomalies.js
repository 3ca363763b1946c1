// Anomalies: score timeline by service, the list newest first with explanations, links to the
// evidence in Discover, and feedback (false positive / real) posted to the detector.
// Everything from logs reaches the page as text nodes (lib/dom.js h()).
import { api } from "../lib/api.js";
import { h, clear, num, fmtTime, ago, quote, toast } from "../lib/dom.js";
import { scoreLanes } from "../lib/charts.js";
import { timePicker } from "../lib/controls.js";
import { openExplain } from "../lib/explain.js";

const KINDS = [
  ["", "All kinds"], ["new_pattern", "New pattern"], ["rate_spike", "Rate spike"], ["rate_drop", "Rate drop"],
  ["silence", "Silence"], ["error_ratio", "Error ratio"], ["session", "Session"], ["window", "Window"],
];
const KIND_LABEL = Object.fromEntries(KINDS.filter(([k]) => k));
const SCORES = [["", "Any score"], ["0.8", "Score ≥ 0.8"], ["0.9", "Score ≥ 0.9"], ["0.95", "Score ≥ 0.95"]];
const VERDICTS = { real: "Confirmed real", false_positive: "False positive" };
const MIN = 60_000;

export function scoreClass(s) {
  return s >= 0.9 ? "sc-high" : s >= 0.8 ? "sc-mid" : "sc-low";
}

/** ISO window of ±minutes around an ISO time, for Discover's from/to. */
function around(iso, before, after = before) {
  const t = new Date(iso).getTime();
  return { from: new Date(t - before * MIN).toISOString(), to: new Date(t + after * MIN).toISOString() };
}

export function mount(root, ctx) {
  const state = {
    from: ctx.params.get("from") || "now-7d",
    to: ctx.params.get("to") || "now",
    service: ctx.params.get("service") || "",
    kind: ctx.params.get("kind") || "",
    min_score: ctx.params.get("min_score") || "",
  };
  let ctrl = null;
  let chart = null;

  const svcSel = h("select", { class: "sel", "aria-label": "Service", "data-testid": "anomaly-service" }, h("option", { value: "" }, "All services"));
  svcSel.addEventListener("change", () => update({ service: svcSel.value }));
  const kindSel = h("select", { class: "sel", "aria-label": "Kind", "data-testid": "anomaly-kind" },
    KINDS.map(([v, l]) => h("option", { value: v, selected: v === state.kind }, l)));
  kindSel.addEventListener("change", () => update({ kind: kindSel.value }));
  const scoreSel = h("select", { class: "sel", "aria-label": "Minimum score", "data-testid": "anomaly-score" },
    SCORES.map(([v, l]) => h("option", { value: v, selected: v === state.min_score }, l)));
  scoreSel.addEventListener("change", () => update({ min_score: scoreSel.value }));
  const tpSlot = h("div", { class: "tp-slot" });
  const kpis = h("div", { class: "kpis" });
  const timelineEl = h("div", { class: "lanes-wrap" });
  const listEl = h("div", { class: "an-list", "data-testid": "anomaly-list" });
  const countEl = h("span", { class: "muted small" });

  root.appendChild(h("div", { class: "page anomalies", "data-testid": "anomalies" },
    h("header", { class: "toolbar" }, h("h1", {}, "Anomalies"), h("div", { class: "grow" }), svcSel, kindSel, scoreSel, tpSlot,
      h("button", { class: "btn btn-ghost", type: "button", title: "Refresh", onclick: () => load() }, "↻")),
    kpis,
    h("section", { class: "panel" }, h("div", { class: "panel-h" }, h("h3", {}, "Score timeline by service"),
      h("span", { class: "legend" },
        h("span", { class: "lg" }, h("i", { class: "sw sc-high-bg" }), "≥ 0.9"),
        h("span", { class: "lg" }, h("i", { class: "sw sc-mid-bg" }), "≥ 0.8"),
        h("span", { class: "lg" }, h("i", { class: "sw sc-low-bg" }), "lower"))), timelineEl),
    h("section", { class: "panel" }, h("div", { class: "panel-h" }, h("h3", {}, "Anomalies, newest first"), countEl), listEl)));

  function update(patch) {
    Object.assign(state, patch);
    ctx.setParams({ from: state.from === "now-7d" ? "" : state.from, to: state.to === "now" ? "" : state.to,
      service: state.service, kind: state.kind, min_score: state.min_score });
    renderPicker();
    load();
  }

  function renderPicker() {
    clear(tpSlot).appendChild(timePicker({ from: state.from, to: state.to, onChange: (from, to) => update({ from, to }) }));
  }

  function kpi(label, value, sub, cls = "") {
    return h("div", { class: `kpi ${cls}` }, h("div", { class: "kpi-l" }, label), h("div", { class: "kpi-v" }, value), h("div", { class: "kpi-s muted" }, sub));
  }

  let shown = [];
  function renderKpis() {
    const services = new Set(shown.map((a) => a.service));
    const top = shown.reduce((m, a) => Math.max(m, a.score), 0);
    const open = shown.filter((a) => !a.feedback).length;
    clear(kpis).append(
      kpi("Anomalies", num(shown.length), shown.length >= 500 ? "newest 500 shown" : "in range", shown.length ? "warn" : "good"),
      kpi("Services affected", num(services.size), [...services].slice(0, 3).join(", ") || "none"),
      kpi("Highest score", shown.length ? top.toFixed(2) : "—", "0 to 1; 1 is most unusual", top >= 0.9 ? "bad" : ""),
      kpi("Awaiting feedback", num(open), open ? "mark them real or false positive" : "all reviewed"));
  }

  function discover(q, win) {
    return { href: `/app/discover?${new URLSearchParams({ q, ...win })}`,
      onclick: (ev) => { if (ev.metaKey || ev.ctrlKey || ev.shiftKey) return; ev.preventDefault(); ctx.navigate("/app/discover", { q, ...win }); } };
  }

  function page(path, params) {
    return { href: `${path}?${new URLSearchParams(params)}`,
      onclick: (ev) => { if (ev.metaKey || ev.ctrlKey || ev.shiftKey) return; ev.preventDefault(); ctx.navigate(path, params); } };
  }

  function card(a) {
    const ex = a.explanation || {};
    const patterns = ex.patterns || [];
    const verdict = h("span", { class: "an-verdict", "data-testid": "verdict" });
    const btnReal = h("button", { class: "btn btn-sm fb-real", type: "button", "data-verdict": "real" }, "✓ Real");
    const btnFp = h("button", { class: "btn btn-sm fb-fp", type: "button", "data-verdict": "false_positive" }, "✕ False positive");
    const el = h("article", { class: "an-card", dataset: { id: a.id, kind: a.kind, feedback: a.feedback || "" } },
      h("div", { class: ["an-score", scoreClass(a.score)], title: `Score ${a.score}` }, a.score.toFixed(2)),
      h("div", { class: "an-main" },
        h("div", { class: "an-head" },
          h("span", { class: `an-kind k-${a.kind}` }, KIND_LABEL[a.kind] || a.kind),
          h("span", { class: "an-svc" }, a.service || "(no service)"),
          h("span", { class: "muted small mono", title: a.ts }, fmtTime(a.ts)),
          h("span", { class: "muted small" }, `· ${ago(a.ts)}`),
          a.repeats ? h("span", { class: "muted small", "data-testid": "repeats", title: "The same kind, service and pattern again soon after: counted here, not listed again" }, `· +${a.repeats} more`) : null,
          h("span", { class: "grow" }), verdict),
        h("p", { class: "an-sum", "data-testid": "summary" }, ex.summary || "(no explanation)"),
        patterns.length ? h("div", { class: "an-pats" }, patterns.slice(0, 3).map((p) =>
          h("div", { class: "an-pat" },
            p.source === "pattern"
              ? h("a", { class: "pat-chip", title: "Events of this pattern in Discover", "data-testid": "pattern-link", ...discover(`pattern:${p.id}`, around(a.ts, 60)) }, p.id)
              : h("span", { class: "pat-chip", title: "Message shape (no template id yet)" }, "shape"),
            p.source === "pattern"
              ? h("a", { class: "muted small", title: "This pattern on the Patterns page", "data-testid": "pattern-page-link", ...page("/app/patterns", { focus: p.id, from: "now-7d" }) }, "pattern ↗")
              : null,
            h("span", { class: "an-ex mono" }, String(p.example || "").split("\n", 1)[0].slice(0, 300))))) : null,
        (ex.drivers || []).length ? h("div", { class: "an-drivers small", "data-testid": "drivers" },
          h("span", { class: "muted" }, "Driven by "),
          ex.drivers.slice(0, 3).map((d, i) => h("span", { class: "mono", title: `pattern ${d.pattern_id}: ${d.count} events` },
            `${i ? ", " : ""}${d.variable} = ${String(d.value)} (${Math.round(d.share * 100)}% vs ${Math.round(d.baseline_share * 100)}% before)`))) : null,
        h("div", { class: "an-acts" },
          a.event_ids.length
            ? h("a", { class: "btn btn-sm", "data-testid": "evidence-link", ...discover(a.event_ids.map((id) => `id:${id}`).join(" OR "), around(a.ts, 30)) },
              `⌕ ${num(a.event_ids.length)} evidence event${a.event_ids.length === 1 ? "" : "s"}`)
            : null,
          a.service ? h("a", { class: "btn btn-sm btn-ghost", ...discover(`service:${quote(a.service)}`, around(a.ts, 15)) }, `${a.service} around then`) : null,
          h("button", { class: "btn btn-sm explain-btn", type: "button", title: "Explain this anomaly", "data-act": "explain",
            onclick: () => openExplain({ anomaly_id: a.id }, ctx.navigate) }, "✦ Explain"),
          h("span", { class: "grow" }),
          h("span", { class: "muted small" }, "Was this useful?"), btnReal, btnFp)));
    const show = (fb) => {
      el.dataset.feedback = fb || "";
      btnReal.classList.toggle("on", fb === "real");
      btnFp.classList.toggle("on", fb === "false_positive");
      verdict.textContent = fb ? VERDICTS[fb] || fb : "";
      verdict.className = `an-verdict ${fb ? `v-${fb}` : ""}`;
    };
    const send = async (v) => {
      btnReal.disabled = btnFp.disabled = true;
      try {
        const res = await api(`/api/v1/anomalies/${encodeURIComponent(a.id)}/feedback`, { method: "POST", body: { verdict: v } });
        a.feedback = res.feedback;
        show(res.feedback);
        renderKpis();
        toast(v === "real" ? "Marked real: similar anomalies stay on" : "Marked a false positive: similar anomalies are muted");
      } catch (e) { toast(e.message, "error"); }
      btnReal.disabled = btnFp.disabled = false;
    };
    btnReal.addEventListener("click", () => send("real"));
    btnFp.addEventListener("click", () => send("false_positive"));
    show(a.feedback);
    return el;
  }

  async function load() {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const page = root.querySelector(".anomalies");
    page.dataset.ready = "0";
    const range = { from: state.from, to: state.to, service: state.service };
    let list, tl;
    try {
      [list, tl] = await Promise.all([
        api("/api/v1/anomalies", { params: { ...range, kind: state.kind, min_score: state.min_score, limit: 500 }, signal: ctrl.signal }),
        api("/api/v1/anomalies/timeline", { params: { ...range, buckets: 120 }, signal: ctrl.signal }),
      ]);
    } catch (e) {
      if (e.name === "AbortError") return;
      clear(listEl).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "!"), e.message || String(e)));
      page.dataset.ready = "1";
      return;
    }
    const items = list.items;
    const known = new Set([...svcSel.options].map((o) => o.value));
    for (const s of [...tl.series.map((x) => x.service), ...items.map((a) => a.service)]) {
      if (!known.has(s)) { known.add(s); svcSel.appendChild(h("option", { value: s }, s)); }
    }
    svcSel.value = state.service;

    shown = items;
    renderKpis();

    if (chart) chart.destroy();
    chart = scoreLanes(timelineEl, tl, {
      onPick: (fromMs, toMs) => update({ from: new Date(fromMs).toISOString(), to: new Date(toMs).toISOString() }),
    });

    countEl.textContent = `${num(items.length)} shown`;
    clear(listEl);
    if (!items.length) {
      listEl.appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "✓"),
        "No anomalies in this range.", h("span", { class: "muted small" }, "The detectors watch every stored batch: new error patterns, rate spikes and drops, silent services.")));
    } else {
      const frag = document.createDocumentFragment();
      for (const a of items) frag.appendChild(card(a));
      listEl.appendChild(frag);
    }
    page.dataset.ready = "1";
  }

  renderPicker();
  load();
  return () => { if (ctrl) ctrl.abort(); if (chart) chart.destroy(); };
}
