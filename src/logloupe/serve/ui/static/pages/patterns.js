// Patterns: what the logs say, grouped by template. Count, trend, first/last seen, level mix.
import { api } from "../lib/api.js";
import { h, clear, num, compact, ago, fmtTime, LEVELS, LEVEL_COLORS, toast } from "../lib/dom.js";
import { sparkline } from "../lib/charts.js";
import { timePicker } from "../lib/controls.js";
import { openExplain } from "../lib/explain.js";

export function mount(root, ctx) {
  const state = {
    from: ctx.params.get("from") || "now-24h",
    to: ctx.params.get("to") || "now",
    service: ctx.params.get("service") || "",
    filter: ctx.params.get("filter") || "",
    focus: ctx.params.get("focus") || "",
    sort: ctx.params.get("sort") || "count",
  };
  let data = { patterns: [] };
  const selected = new Set();
  let ctrl = null;

  const svcSel = h("select", { class: "sel", "aria-label": "Service", "data-testid": "pattern-service" }, h("option", { value: "" }, "All services"));
  svcSel.addEventListener("change", () => update({ service: svcSel.value }));
  const filterIn = h("input", { class: "q-input small-input", type: "search", placeholder: "Filter patterns…", value: state.filter, "aria-label": "Filter patterns" });
  filterIn.addEventListener("input", () => { state.filter = filterIn.value; ctx.setParams(params()); render(); });
  const tpSlot = h("div", { class: "tp-slot" });
  const sorts = [["count", "Most events"], ["new", "Newest first"], ["recent", "Last seen"]];
  const seg = h("div", { class: "seg", role: "group", "aria-label": "Sort" }, sorts.map(([k, l]) =>
    h("button", { type: "button", class: state.sort === k ? "on" : "", dataset: { sort: k },
      onclick: () => { state.sort = k; ctx.setParams(params()); seg.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.sort === k)); render(); } }, l)));
  const summary = h("div", { class: "muted small" });
  const mergeBtn = h("button", { class: "btn", type: "button", disabled: true, "data-testid": "merge" }, "Merge selected");
  mergeBtn.addEventListener("click", merge);
  const tbody = h("tbody", {});
  root.appendChild(h("div", { class: "page patterns" },
    h("header", { class: "toolbar" }, h("h1", {}, "Patterns"), filterIn, h("div", { class: "grow" }), mergeBtn, seg, svcSel, tpSlot),
    h("div", { class: "panel" },
      h("div", { class: "panel-h" }, summary,
        h("div", { class: "legend" }, h("span", { class: "new-badge" }, "NEW"), h("span", { class: "muted small" }, " first seen recently"))),
      h("table", { class: "ptable", "data-testid": "patterns" },
        h("thead", {}, h("tr", {}, h("th", { class: "c-sel" }), h("th", {}, "Pattern"), h("th", { class: "num" }, "Count"),
          h("th", {}, "Trend"), h("th", {}, "Levels"), h("th", {}, "First seen"), h("th", {}, "Last seen"), h("th", {}))),
        tbody))));

  function params() {
    return { from: state.from, to: state.to, service: state.service, filter: state.filter, sort: state.sort === "count" ? "" : state.sort };
  }

  function update(patch) {
    Object.assign(state, patch);
    ctx.setParams(params());
    renderPicker();
    load();
  }

  function renderPicker() {
    clear(tpSlot).appendChild(timePicker({ from: state.from, to: state.to, onChange: (from, to) => update({ from, to }) }));
  }

  async function load() {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const page = root.querySelector(".patterns");
    page.dataset.ready = "0";
    try {
      data = await api("/api/v1/patterns", { params: { from: state.from, to: state.to, service: state.service, buckets: 24 }, signal: ctrl.signal });
    } catch (e) {
      if (e.name !== "AbortError") toast(e.message, "error");
      return;
    }
    const known = new Set([...svcSel.options].map((o) => o.value));
    for (const p of data.patterns) if (p.service && !known.has(p.service)) { known.add(p.service); svcSel.appendChild(h("option", { value: p.service }, p.service)); }
    svcSel.value = state.service;
    selected.clear();
    render();
    page.dataset.ready = "1";
  }

  function levelMix(levels, count) {
    const bar = h("div", { class: "mix", title: LEVELS.filter((l) => levels[l]).map((l) => `${l}: ${num(levels[l])}`).join("  ") });
    for (const l of LEVELS) {
      if (!levels[l]) continue;
      bar.appendChild(h("span", { style: { width: `${(levels[l] / count) * 100}%`, background: LEVEL_COLORS[l] } }));
    }
    return bar;
  }

  function openInDiscover(p) {
    ctx.navigate("/app/discover", { q: `pattern:${p.id}`, from: state.from, to: state.to });
  }

  function render() {
    clear(tbody);
    const f = state.filter.toLowerCase();
    const shown = data.patterns.filter((p) => !f || p.example.toLowerCase().includes(f) || p.name.toLowerCase().includes(f) || p.id.includes(f) || p.service.toLowerCase().includes(f));
    if (state.sort === "new") shown.sort((a, b) => (b.new - a.new) || b.first_seen.localeCompare(a.first_seen));
    else if (state.sort === "recent") shown.sort((a, b) => b.last_seen.localeCompare(a.last_seen));
    const newCount = data.patterns.filter((p) => p.new).length;
    summary.textContent = `${num(data.patterns.length)} patterns · ${num(data.total || 0)} events · ${num(newCount)} new`;
    if (!shown.length) {
      tbody.appendChild(h("tr", {}, h("td", { colspan: 8 }, h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "◈"),
        h("div", {}, data.patterns.length ? "No pattern matches this filter." : "No patterns in this range yet."),
        h("div", { class: "muted small" }, "Patterns appear as the template miner groups incoming events.")))));
    }
    for (const p of shown) {
      const check = h("input", { type: "checkbox", "aria-label": "Select for merge", checked: selected.has(p.id) });
      check.addEventListener("click", (e) => e.stopPropagation());
      check.addEventListener("change", () => { check.checked ? selected.add(p.id) : selected.delete(p.id); mergeBtn.disabled = selected.size < 2; mergeBtn.textContent = selected.size >= 2 ? `Merge ${selected.size} selected` : "Merge selected"; });
      const title = p.name || p.template || p.example.split("\n", 1)[0];
      const tr = h("tr", { class: ["prow", p.new ? "is-new" : "", state.focus === p.id ? "focus" : ""], dataset: { id: p.id }, tabindex: "0", title: "Open these events in Discover" },
        h("td", { class: "c-sel" }, check),
        h("td", { class: "p-main" },
          h("div", { class: "p-title" }, p.new ? h("span", { class: "new-badge" }, "NEW") : null,
            h("span", { class: p.name ? "p-name" : "mono p-ex" }, title.length > 240 ? title.slice(0, 240) + "…" : title)),
          h("div", { class: "p-sub muted small" }, h("span", { class: "mono" }, p.id), " · ", p.service || "—",
            p.name ? [" · ", h("span", { class: "mono" }, p.example.split("\n", 1)[0].slice(0, 120))] : null,
            p.merged.length ? h("span", { class: "merged-badge", title: p.merged.join(", ") }, ` +${p.merged.length} merged`) : null)),
        h("td", { class: "num" }, h("b", {}, compact(p.count))),
        h("td", {}, sparkline(p.trend, { color: ((p.levels.ERROR || 0) + (p.levels.FATAL || 0)) * 2 > p.count ? "var(--lv-error)" : (p.levels.WARN || 0) * 2 > p.count ? "var(--lv-warn)" : "var(--accent)" })),
        h("td", {}, levelMix(p.levels, p.count)),
        h("td", { class: "small", title: fmtTime(p.first_seen) }, ago(p.first_seen)),
        h("td", { class: "small", title: fmtTime(p.last_seen) }, ago(p.last_seen)),
        h("td", { class: "p-acts" },
          h("button", { class: "btn btn-sm explain-btn", type: "button", title: "Explain this pattern", "data-act": "explain",
            onclick: (e) => { e.stopPropagation(); openExplain({ pattern_id: p.id, from: state.from, to: state.to }, ctx.navigate); } }, "✦ Explain"),
          h("button", { class: "ibtn", type: "button", title: "Rename", "data-act": "rename", onclick: (e) => { e.stopPropagation(); rename(p, tr); } }, "✎"),
          p.merged.length ? h("button", { class: "ibtn", type: "button", title: "Split merged patterns off", "data-act": "split", onclick: (e) => { e.stopPropagation(); split(p); } }, "✂") : null));
      tr.addEventListener("click", (e) => { if (!e.target.closest("input,button,form")) openInDiscover(p); });
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter" && e.target === tr) openInDiscover(p); });
      tbody.appendChild(tr);
    }
    const focused = tbody.querySelector("tr.focus");
    if (focused) focused.scrollIntoView({ block: "center" });
  }

  function rename(p, tr) {
    const cell = tr.querySelector(".p-title");
    const input = h("input", { type: "text", value: p.name, placeholder: "Name this pattern", maxlength: 200, "aria-label": "Pattern name" });
    const form = h("form", { class: "rename-form" }, input, h("button", { class: "btn btn-primary btn-sm", type: "submit" }, "Save"),
      h("button", { class: "btn btn-sm", type: "button", onclick: () => render() }, "Cancel"));
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api(`/api/v1/patterns/${p.id}/rename`, { method: "POST", body: { name: input.value } });
        p.name = input.value.trim();
        toast("Pattern renamed");
        render();
      } catch (err) { toast(err.message, "error"); }
    });
    clear(cell).appendChild(form);
    input.focus();
  }

  async function merge() {
    const ids = data.patterns.filter((p) => selected.has(p.id)).map((p) => p.id);
    if (ids.length < 2) return;
    try {
      await api("/api/v1/patterns/merge", { method: "POST", body: { ids } });
      toast(`Merged ${ids.length} patterns`);
      mergeBtn.disabled = true;
      mergeBtn.textContent = "Merge selected";
      load();
    } catch (err) { toast(err.message, "error"); }
  }

  async function split(p) {
    try {
      const res = await api(`/api/v1/patterns/${p.id}/split`, { method: "POST", body: {} });
      toast(`Split off ${res.split.length} patterns`);
      load();
    } catch (err) { toast(err.message, "error"); }
  }

  renderPicker();
  load();
  return () => { if (ctrl) ctrl.abort(); };
}
