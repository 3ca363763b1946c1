// Dashboard: KPIs and panels from /api/v1/stats/overview; service and time filters apply to all.
import { api } from "../lib/api.js";
import { h, clear, num, compact, pct, fmtTime, levelBadge, LEVELS, LEVEL_COLORS, quote, toast } from "../lib/dom.js";
import { timeBars, donut } from "../lib/charts.js";
import { timePicker } from "../lib/controls.js";

export function mount(root, ctx) {
  const state = {
    from: ctx.params.get("from") || "now-1h",
    to: ctx.params.get("to") || "now",
    service: ctx.params.get("service") || "",
    refresh: ctx.params.get("refresh") || "30",
  };
  let ctrl = null;
  let chart = null;
  let timer = null;

  const svcSel = h("select", { class: "sel", "aria-label": "Service", "data-testid": "service-filter" }, h("option", { value: "" }, "All services"));
  svcSel.addEventListener("change", () => update({ service: svcSel.value }));
  const refreshSel = h("select", { class: "sel", "aria-label": "Auto-refresh" },
    [["0", "Auto-refresh off"], ["10", "Every 10 s"], ["30", "Every 30 s"], ["60", "Every 1 min"]].map(([v, l]) => h("option", { value: v, selected: v === state.refresh }, l)));
  refreshSel.addEventListener("change", () => update({ refresh: refreshSel.value }));
  const tpSlot = h("div", { class: "tp-slot" });
  const updated = h("span", { class: "muted small" });
  const kpis = h("div", { class: "kpis" });
  const levelsEl = h("div", { class: "donut-wrap" });
  const servicesEl = h("div", { class: "hbars" });
  const timelineEl = h("div", { class: "hist" });
  const patternsEl = h("div", { class: "list-panel" });
  const latestEl = h("div", { class: "list-panel" });
  const panel = (title, body, cls = "", action = null) =>
    h("section", { class: `panel ${cls}` }, h("div", { class: "panel-h" }, h("h3", {}, title), action), body);

  root.appendChild(h("div", { class: "page dashboard", "data-testid": "dashboard" },
    h("header", { class: "toolbar" }, h("h1", {}, "Dashboard"), h("div", { class: "grow" }), updated, svcSel, refreshSel, tpSlot,
      h("button", { class: "btn btn-ghost", type: "button", title: "Refresh", onclick: () => load() }, "↻")),
    kpis,
    h("div", { class: "grid-2" },
      panel("Logs by level", levelsEl),
      panel("Logs by service", servicesEl)),
    panel("Timeline", timelineEl, "wide"),
    h("div", { class: "grid-2" },
      panel("Top error patterns", patternsEl),
      panel("Latest errors", latestEl, "", h("a", { class: "small", href: "#", onclick: (e) => { e.preventDefault(); ctx.navigate("/app/discover", { q: scopedQ("level:>=ERROR"), from: state.from, to: state.to }); } }, "Open in Discover →")))));

  function scopedQ(q) {
    return state.service ? `service:${quote(state.service)} ${q}`.trim() : q;
  }

  function update(patch) {
    Object.assign(state, patch);
    ctx.setParams({ from: state.from, to: state.to, service: state.service, refresh: state.refresh === "30" ? "" : state.refresh });
    renderPicker();
    schedule();
    load();
  }

  function renderPicker() {
    clear(tpSlot).appendChild(timePicker({ from: state.from, to: state.to, onChange: (from, to) => update({ from, to }) }));
  }

  function schedule() {
    if (timer) clearInterval(timer);
    const s = Number(state.refresh);
    timer = s > 0 ? setInterval(() => { if (!document.hidden) load(); }, s * 1000) : null;
  }

  function kpi(label, value, sub, cls = "") {
    return h("div", { class: `kpi ${cls}` }, h("div", { class: "kpi-l" }, label), h("div", { class: "kpi-v" }, value), h("div", { class: "kpi-s muted" }, sub));
  }

  async function load() {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const page = root.querySelector(".dashboard");
    page.dataset.ready = "0";
    let data;
    try {
      data = await api("/api/v1/stats/overview", { params: { from: state.from, to: state.to, service: state.service, buckets: 60 }, signal: ctrl.signal });
    } catch (e) {
      if (e.name !== "AbortError") toast(e.message, "error");
      return;
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    // Service list: keep every service seen, so the filter does not shrink to the chosen one.
    const known = new Set([...svcSel.options].map((o) => o.value));
    for (const s of data.by_service) if (!known.has(s.service)) svcSel.appendChild(h("option", { value: s.service }, s.service));
    svcSel.value = state.service;

    clear(kpis).append(
      kpi("Total events", compact(data.total), `${num(data.total)} in range`),
      kpi("Errors", compact(data.errors), "ERROR and FATAL", data.errors ? "bad" : ""),
      kpi("Error rate", pct(data.error_rate), "of all events", data.error_rate > 0.05 ? "bad" : data.error_rate > 0.01 ? "warn" : "good"),
      kpi("Events / s", data.events_per_s < 10 ? data.events_per_s.toFixed(2) : compact(data.events_per_s), "average over the range"));

    clear(levelsEl);
    const items = LEVELS.map((l) => ({ label: l, value: data.by_level[l] || 0, color: LEVEL_COLORS[l] })).reverse();
    levelsEl.appendChild(donut(items, { center: compact(data.total) }));
    levelsEl.appendChild(h("div", { class: "donut-legend" }, items.filter((i) => i.value).map((i) =>
      h("button", { class: "dl-row", type: "button", onclick: () => ctx.navigate("/app/discover", { q: scopedQ(`level:${i.label}`), from: state.from, to: state.to }) },
        h("i", { style: { background: i.color } }), levelBadge(i.label), h("span", { class: "grow" }),
        h("b", {}, compact(i.value)), h("span", { class: "muted small w-pct" }, pct(i.value / (data.total || 1)))))));

    clear(servicesEl);
    const maxS = Math.max(1, ...data.by_service.map((s) => s.count));
    for (const s of data.by_service) {
      servicesEl.appendChild(h("button", { class: "hb-row", type: "button", title: `Filter the dashboard to ${s.service}`, onclick: () => update({ service: s.service }) },
        h("span", { class: "hb-l mono" }, s.service || "(none)"),
        h("span", { class: "hb-track" },
          h("span", { class: "hb-bar", style: { width: `${(s.count / maxS) * 100}%` } },
            h("span", { class: "hb-err", style: { width: `${s.count ? (s.errors / s.count) * 100 : 0}%` } }))),
        h("span", { class: "hb-n" }, compact(s.count)),
        h("span", { class: ["hb-e small", s.errors ? "bad" : "muted"] }, s.errors ? `${compact(s.errors)} err` : "0 err")));
    }
    if (!data.by_service.length) servicesEl.appendChild(h("div", { class: "muted" }, "No events."));

    if (chart) chart.destroy();
    chart = timeBars(timelineEl, data.timeline, { keys: LEVELS, height: 170, onBrush: (a, b) => update({ from: new Date(a).toISOString(), to: new Date(b).toISOString() }) });

    clear(patternsEl);
    const maxP = Math.max(1, ...data.top_error_patterns.map((p) => p.count));
    for (const p of data.top_error_patterns) {
      const q = p.id ? `pattern:${p.id}` : `level:>=ERROR`;
      patternsEl.appendChild(h("button", { class: "lp-row", type: "button", onclick: () => ctx.navigate("/app/discover", { q: p.id ? q : scopedQ(q), from: state.from, to: state.to }) },
        h("div", { class: "lp-main" }, h("div", { class: "lp-t" }, p.name || p.example.split("\n", 1)[0]),
          h("div", { class: "lp-s muted small mono" }, p.id ? `${p.service} · ${p.id}` : `${p.service} · not yet patterned`)),
        h("div", { class: "lp-n" }, h("b", {}, compact(p.count)), h("span", { class: "lp-bar", style: { width: `${(p.count / maxP) * 60}px` } }))));
    }
    if (!data.top_error_patterns.length) patternsEl.appendChild(h("div", { class: "empty small" }, "No errors in this range. ✓"));

    clear(latestEl);
    for (const e of data.latest_errors) {
      latestEl.appendChild(h("a", { class: "le-row", href: `/app/discover?q=${encodeURIComponent(`id:${e.id}`)}&from=now-30d`,
        onclick: (ev) => { ev.preventDefault(); ctx.navigate("/app/discover", { q: `id:${e.id}`, from: "now-30d" }); } },
        h("span", { class: "mono muted small" }, fmtTime(e.ts, false)), levelBadge(e.level), h("span", { class: "le-svc" }, e.service),
        h("span", { class: "le-msg mono" }, e.message.split("\n", 1)[0].slice(0, 300))));
    }
    if (!data.latest_errors.length) latestEl.appendChild(h("div", { class: "empty small" }, "No errors in this range. ✓"));
    page.dataset.ready = "1";
  }

  renderPicker();
  schedule();
  load();
  return () => { if (timer) clearInterval(timer); if (ctrl) ctrl.abort(); if (chart) chart.destroy(); };
}
