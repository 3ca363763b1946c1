// Discover: query, time range, histogram (drag to zoom), field sidebar, results with details.
import { api, download } from "../lib/api.js";
import { h, clear, num, compact, fmtTime, levelBadge, LEVELS, quote, copyText, toast, messageBlock } from "../lib/dom.js";
import { timeBars } from "../lib/charts.js";
import { queryBar, timePicker } from "../lib/controls.js";
import { openExplain } from "../lib/explain.js";

const PAGE_SIZE = 100;
// An export from the browser is held in memory before it is saved; larger ones: GET /api/v1/export.
const EXPORT_LIMIT = 100_000;
const FIELD_LABELS = { service: "service", host: "host", level: "level", pattern_id: "pattern", source: "source" };

export function filterFor(field, value, exclude = false) {
  let term;
  if (field === "pattern_id" || field === "pattern") term = `pattern:${value}`;
  else if (field === "level") term = `level:${value}`;
  else term = `${field}:${quote(value)}`;
  return (exclude ? "-" : "") + term;
}

export function addFilter(q, term) {
  q = (q || "").trim();
  if (!q) return term;
  if (q.split(/\s+/).includes(term)) return q;
  return /\bOR\b/.test(q) ? `(${q}) ${term}` : `${q} ${term}`;
}

export function mount(root, ctx) {
  const state = {
    q: ctx.params.get("q") || "",
    from: ctx.params.get("from") || "now-15m",
    to: ctx.params.get("to") || "now",
    sort: ctx.params.get("sort") || "desc",
  };
  let ctrl = null;
  let cursor = null;
  let loadingMore = false;
  let chart = null;
  const rendered = new Map();

  const bar = queryBar({ q: state.q, onSubmit: (q) => update({ q }, false) });
  const savedBtn = h("button", { class: "btn", type: "button", "data-testid": "saved-btn" }, "★ Saved");
  const savedPop = h("div", { class: "popover saved-pop", hidden: true });
  savedBtn.addEventListener("click", (e) => { e.stopPropagation(); savedPop.hidden = !savedPop.hidden; if (!savedPop.hidden) loadSaved(); });
  const onDocClick = (e) => { if (!savedPop.contains(e.target)) savedPop.hidden = true; };
  document.addEventListener("click", onDocClick);

  const tpSlot = h("div", { class: "tp-slot" });
  const refresh = h("button", { class: "btn btn-ghost", type: "button", title: "Refresh (r)", onclick: () => run() }, "↻");
  const hits = h("span", { class: "hits", "data-testid": "hits" }, "…");
  const took = h("span", { class: "muted small" });
  const exportBtn = (format, label) => h("button", { class: "btn btn-sm", type: "button", title: `Download the matching events as ${label} (up to ${num(EXPORT_LIMIT)})`,
    "data-testid": `export-${format}`, onclick: () => exportAs(format) }, `⤓ ${label}`);
  const exports = h("div", { class: "export-btns" }, exportBtn("ndjson", "NDJSON"), exportBtn("csv", "CSV"));
  const chartEl = h("div", { class: "hist", "data-testid": "histogram" });
  const fieldsEl = h("aside", { class: "fields", "data-testid": "fields" });
  const tbody = h("tbody", {});
  const sentinel = h("div", { class: "sentinel" });
  const status = h("div", { class: "list-status muted" });
  const resultsEl = h("section", { class: "results" },
    h("table", { class: "events", "data-testid": "results" },
      h("thead", {}, h("tr", {},
        h("th", { class: "c-exp" }), h("th", { class: "c-time" },
          h("button", { class: "sort", type: "button", title: "Sort", onclick: () => update({ sort: state.sort === "desc" ? "asc" : "desc" }) },
            "Time ", state.sort === "desc" ? "↓" : "↑")),
        h("th", { class: "c-lv" }, "Level"), h("th", { class: "c-svc" }, "Service"),
        h("th", { class: "c-msg" }, "Message"), h("th", { class: "c-pat" }, "Pattern"))),
      tbody),
    status, sentinel);

  root.appendChild(h("div", { class: "page discover" },
    h("header", { class: "toolbar" }, bar.el, h("div", { class: "saved-wrap" }, savedBtn, savedPop), tpSlot, refresh),
    h("div", { class: "panel hist-panel" },
      h("div", { class: "panel-h" }, h("div", {}, hits, " ", h("span", { class: "muted" }, "hits"), " ", took), exports,
        h("div", { class: "legend" }, LEVELS.map((l) => h("span", { class: "lg" }, h("i", { class: `sw sw-${l.toLowerCase()}` }), l)))),
      chartEl),
    h("div", { class: "discover-body" }, fieldsEl, resultsEl)));

  function renderPicker() {
    clear(tpSlot).appendChild(timePicker({ from: state.from, to: state.to, onChange: (from, to) => update({ from, to }, false) }));
  }

  function update(patch, replace = false) {
    Object.assign(state, patch);
    bar.input.value = state.q;
    ctx.setParams({ q: state.q, from: state.from, to: state.to, sort: state.sort === "desc" ? "" : state.sort }, replace);
    renderPicker();
    const th = resultsEl.querySelector(".sort");
    if (th) th.lastChild.textContent = state.sort === "desc" ? "↓" : "↑";
    run();
  }

  async function exportAs(format) {
    const sort = state.sort === "asc" ? "ts:asc" : "ts:desc";
    try {
      const got = await download("/api/v1/export", { ...range(), sort, format, limit: EXPORT_LIMIT });
      toast(got.exported < got.total ? `Exported the first ${num(got.exported)} of ${num(got.total)} events` : `Exported ${num(got.exported)} events`);
    } catch (e) {
      toast(e.message || String(e), "error");
    }
  }

  function range() {
    // Relative ranges are pinned to one "now" per run, so the table, chart and fields agree.
    return { q: state.q, from: state.from, to: state.to };
  }

  async function run() {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const signal = ctrl.signal;
    bar.setError(null);
    const params = range();
    cursor = null;
    rendered.clear();
    status.textContent = "Searching…";
    const page = root.querySelector(".discover");
    page.classList.add("busy");
    page.dataset.ready = "0";
    page.dataset.rows = "0";
    const search = api("/api/v1/search", { params: { ...params, limit: PAGE_SIZE, sort: `ts:${state.sort}`, fields: "all" }, signal });
    // The table first: the store serves one query at a time, so the chart and the fields wait
    // for the page of events instead of competing with it.
    const hist = search.then(() => api("/api/v1/histogram", { params: { ...params, buckets: 80 }, signal }));
    const facets = search.then(() => api("/api/v1/facets", { params: { ...params, size: 8 }, signal }));
    // Handled below, or dropped with the search's error: never an unhandled rejection.
    hist.catch(() => {});
    facets.catch(() => {});
    try {
      const res = await search;
      hits.textContent = num(res.total);
      took.textContent = `· ${res.took_ms} ms`;
      clear(tbody);
      appendRows(res.events);
      cursor = res.next_cursor;
      setStatus(res);
      page.dataset.rows = "1";
    } catch (e) {
      if (e.name === "AbortError") return;
      clear(tbody);
      hits.textContent = "0";
      took.textContent = "";
      status.textContent = "";
      if (e.status === 400) bar.setError(e);
      else toast(e.message, "error");
      clear(chartEl); clear(fieldsEl);
      clear(status).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "⚠"),
        h("div", {}, e.status === 400 ? "Fix the query to see results." : "The search failed."),
        h("div", { class: "muted small" }, "Press ? in the query bar for the syntax.")));
      page.classList.remove("busy");
      page.dataset.ready = "1";
      return;
    }
    page.classList.remove("busy");
    const charted = hist.then((data) => {
      if (chart) chart.destroy();
      chart = timeBars(chartEl, data, {
        keys: data.split === "level" ? LEVELS : undefined,
        onBrush: (a, b) => update({ from: new Date(a).toISOString(), to: new Date(b).toISOString() }, false),
      });
    }).catch((e) => { if (e.name !== "AbortError") clear(chartEl); });
    const listed = facets.then(renderFields).catch((e) => { if (e.name !== "AbortError") clear(fieldsEl); });
    // For tests and screen readers: everything on the page belongs to the same query now.
    Promise.all([charted, listed]).then(() => { if (!signal.aborted) page.dataset.ready = "1"; });
  }

  function setStatus(res) {
    const shown = tbody.querySelectorAll("tr.ev").length;
    if (!shown) {
      clear(status).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "∅"),
        h("div", {}, "No events match this query in this time range."),
        h("div", { class: "muted small" }, "Widen the time range or remove a filter.")));
    } else if (cursor) status.textContent = `Showing ${num(shown)} of ${num(res.total ?? shown)} — scroll for more`;
    else status.textContent = `All ${num(shown)} events shown`;
  }

  async function loadMore() {
    if (!cursor || loadingMore) return;
    loadingMore = true;
    const signal = ctrl ? ctrl.signal : undefined;
    try {
      const res = await api("/api/v1/search", { params: { ...range(), limit: PAGE_SIZE, sort: `ts:${state.sort}`, cursor, fields: "all" }, signal });
      appendRows(res.events);
      cursor = res.next_cursor;
      setStatus({ total: Number(hits.textContent.replace(/\D/g, "")) });
    } catch (e) {
      if (e.name !== "AbortError") toast(e.message, "error");
    } finally {
      loadingMore = false;
    }
  }
  const io = new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) loadMore(); }, { rootMargin: "600px" });
  io.observe(sentinel);

  function firstLine(msg) {
    const nl = msg.indexOf("\n");
    const line = nl >= 0 ? msg.slice(0, nl) : msg;
    return line.length > 400 ? line.slice(0, 400) + "…" : line;
  }

  function appendRows(events) {
    const frag = document.createDocumentFragment();
    for (const ev of events) {
      if (rendered.has(ev.id)) continue;
      rendered.set(ev.id, ev);
      const lines = ev.message.split("\n", 2).length > 1;
      const tr = h("tr", { class: ["ev", `lv-row-${ev.level.toLowerCase()}`], dataset: { id: ev.id }, tabindex: "0" },
        h("td", { class: "c-exp" }, h("span", { class: "chev" }, "›")),
        h("td", { class: "c-time mono" }, fmtTime(ev.ts)),
        h("td", { class: "c-lv" }, levelBadge(ev.level)),
        h("td", { class: "c-svc" }, ev.service),
        h("td", { class: "c-msg mono" }, firstLine(ev.message), lines ? h("span", { class: "ml-badge", title: "multi-line" }, "↵") : null),
        h("td", { class: "c-pat" }, ev.pattern_id
          ? h("a", { class: "pat-chip", href: `/app/discover?q=pattern:${ev.pattern_id}`, title: `pattern:${ev.pattern_id}`,
            onclick: (e) => { e.preventDefault(); e.stopPropagation(); update({ q: `pattern:${ev.pattern_id}` }, false); } }, ev.pattern_id.slice(0, 6))
          : h("span", { class: "muted" }, "—")));
      const toggle = () => {
        const next = tr.nextElementSibling;
        if (next && next.classList.contains("detail")) { next.remove(); tr.classList.remove("open"); return; }
        tr.classList.add("open");
        tr.after(detailRow(ev));
      };
      tr.addEventListener("click", (e) => { if (!e.target.closest("a,button")) toggle(); });
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") toggle(); });
      frag.appendChild(tr);
    }
    tbody.appendChild(frag);
  }

  function fieldRows(ev) {
    const rows = [
      ["ts", ev.ts], ["level", ev.level], ["service", ev.service], ["host", ev.host], ["source", ev.source],
      ["pattern_id", ev.pattern_id], ["trace_id", ev.trace_id], ["span_id", ev.span_id], ["level_raw", ev.level_raw],
      ["id", ev.id], ["observed_ts", ev.observed_ts],
    ];
    for (const [k, v] of Object.entries(ev.attributes || {}).sort()) rows.push([`attr.${k}`, v]);
    if (ev.flags && ev.flags.length) rows.push(["flags", ev.flags.join(", ")]);
    return rows.filter(([, v]) => v !== "" && v !== undefined && v !== null);
  }

  function detailRow(ev) {
    const filterable = (k) => !["ts", "observed_ts", "id", "flags"].includes(k);
    const table = h("table", { class: "kv" }, h("tbody", {}, fieldRows(ev).map(([k, v]) => h("tr", {},
      h("td", { class: "k mono" }, k),
      h("td", { class: "acts" }, filterable(k) ? [
        h("button", { class: "ibtn", type: "button", title: `Filter for ${k}`, onclick: () => update({ q: addFilter(state.q, filterFor(k, v)) }, false) }, "⊕"),
        h("button", { class: "ibtn", type: "button", title: `Filter out ${k}`, onclick: () => update({ q: addFilter(state.q, filterFor(k, v, true)) }, false) }, "⊖"),
      ] : null),
      h("td", { class: "v mono" }, String(v))))));
    const actions = h("div", { class: "detail-acts" },
      h("button", { class: "btn btn-sm", type: "button", onclick: () => copyText(ev.message) }, "Copy message"),
      h("button", { class: "btn btn-sm", type: "button", onclick: () => copyText(JSON.stringify(ev, null, 2)) }, "Copy JSON"),
      h("button", { class: "btn btn-sm", type: "button", "data-testid": "surrounding", onclick: () => showContext(ev) }, "View surrounding"),
      h("button", { class: "btn btn-sm", type: "button", "data-testid": "explain-event", onclick: () => openExplain({ event_id: ev.id }, ctx.navigate) }, "✦ Explain"),
      ev.pattern_id ? h("a", { class: "btn btn-sm", href: `/app/patterns?focus=${ev.pattern_id}`,
        onclick: (e) => { e.preventDefault(); ctx.navigate("/app/patterns", { focus: ev.pattern_id }); } }, "Open pattern") : null,
      ev.pattern_id ? h("button", { class: "btn btn-sm", type: "button", onclick: () => update({ q: `pattern:${ev.pattern_id}` }, false) }, "Same pattern") : null,
      ev.trace_id ? h("button", { class: "btn btn-sm", type: "button", onclick: () => update({ q: `trace_id:${quote(ev.trace_id)}` }, false) }, "Same trace") : null);
    return h("tr", { class: "detail" }, h("td", { colspan: 6 },
      h("div", { class: "detail-grid" },
        h("div", { class: "detail-msg" }, h("div", { class: "sub-h" }, "Message"), messageBlock(ev.message), actions),
        h("div", { class: "detail-fields" }, h("div", { class: "sub-h" }, "Fields"), table, variablesTable(ev)))));
  }

  // The pattern's variables (the template's <*> slots, left to right): filter by var.N:"value".
  function variablesTable(ev) {
    const vars = ev.pattern_vars || [];
    const types = ev.pattern_var_types || [];
    if (!vars.length) return null;
    const filter = (i, v, exclude) => update({ q: addFilter(state.q, `${exclude ? "-" : ""}var.${i}:${quote(v)}`) }, false);
    return h("div", { class: "vars", "data-testid": "pattern-vars" },
      h("div", { class: "sub-h" }, "Pattern variables"),
      h("table", { class: "kv" }, h("tbody", {}, vars.map((v, i) => h("tr", { dataset: { var: String(i) } },
        h("td", { class: "k mono" }, `var.${i}`),
        h("td", { class: "acts" },
          h("button", { class: "ibtn", type: "button", title: `Filter for var.${i}`, "data-act": "include", onclick: () => filter(i, v, false) }, "⊕"),
          h("button", { class: "ibtn", type: "button", title: `Filter out var.${i}`, "data-act": "exclude", onclick: () => filter(i, v, true) }, "⊖")),
        h("td", { class: "v mono" }, String(v)),
        h("td", { class: "muted", title: "Variable type" }, String(types[i] || "")))))));
  }

  async function showContext(ev) {
    const list = h("div", { class: "ctx-list" }, h("div", { class: "muted" }, "Loading…"));
    const close = () => { overlay.remove(); document.removeEventListener("keydown", esc); };
    const esc = (e) => { if (e.key === "Escape") close(); };
    const overlay = h("div", { class: "modal-bg", onclick: (e) => { if (e.target === overlay) close(); } },
      h("div", { class: "modal", role: "dialog", "aria-label": "Surrounding events", "data-testid": "context" },
        h("div", { class: "modal-h" }, h("div", {}, h("b", {}, "Surrounding events"), " ",
          h("span", { class: "muted" }, `${ev.service} · ${ev.host}`)),
          h("div", { class: "modal-acts" },
            h("button", { class: "btn btn-sm", type: "button", onclick: () => {
              close();
              const t = new Date(ev.ts).getTime();
              update({
                q: `service:${quote(ev.service)} host:${quote(ev.host)}`,
                from: new Date(t - 60e3).toISOString(), to: new Date(t + 60e3).toISOString(), sort: "asc",
              }, false);
            } }, "Open in Discover (±1 min)"),
            h("button", { class: "btn btn-ghost", type: "button", onclick: close, "aria-label": "Close" }, "✕"))),
        list));
    document.addEventListener("keydown", esc);
    document.body.appendChild(overlay);
    try {
      const data = await api(`/api/v1/events/${encodeURIComponent(ev.id)}/context`, { params: { before: 25, after: 25 } });
      clear(list);
      const row = (e, anchor) => h("div", { class: ["ctx-row", anchor ? "anchor" : ""] },
        h("span", { class: "mono muted" }, fmtTime(e.ts)), levelBadge(e.level), h("span", { class: "mono ctx-msg" }, firstLine(e.message)));
      data.before.forEach((e) => list.appendChild(row(e)));
      const a = row(data.event, true);
      list.appendChild(a);
      data.after.forEach((e) => list.appendChild(row(e)));
      a.scrollIntoView({ block: "center" });
    } catch (e) {
      clear(list).appendChild(h("div", { class: "q-error-msg" }, e.message));
    }
  }

  function renderFields(data) {
    clear(fieldsEl);
    fieldsEl.appendChild(h("div", { class: "fields-h" }, "Fields"));
    const total = data.total || 1;
    for (const [field, values] of Object.entries(data.fields)) {
      if (!values.length) continue;
      const label = FIELD_LABELS[field] || field;
      const box = h("details", { class: "field", open: true, dataset: { field } },
        h("summary", {}, h("span", { class: "mono" }, label), h("span", { class: "muted small" }, String(values.length))));
      for (const v of values) {
        const share = v.count / total;
        box.appendChild(h("div", { class: "fv", dataset: { value: v.value } },
          h("button", {
            class: "fv-main", type: "button", title: `Filter for ${label}: ${v.value}`,
            onclick: () => update({ q: addFilter(state.q, filterFor(field, v.value)) }, false),
          },
          h("span", { class: "fv-bar", style: { width: `${Math.max(2, share * 100)}%` } }),
          field === "level" ? levelBadge(v.value) : h("span", { class: "fv-v mono" }, v.value),
          h("span", { class: "fv-n" }, compact(v.count))),
          h("button", { class: "ibtn", type: "button", title: "Filter for", "data-act": "include", onclick: () => update({ q: addFilter(state.q, filterFor(field, v.value)) }, false) }, "⊕"),
          h("button", { class: "ibtn", type: "button", title: "Filter out", "data-act": "exclude", onclick: () => update({ q: addFilter(state.q, filterFor(field, v.value, true)) }, false) }, "⊖")));
      }
      fieldsEl.appendChild(box);
    }
  }

  async function loadSaved() {
    clear(savedPop);
    const name = h("input", { type: "text", placeholder: "Name this search", "aria-label": "Saved search name", maxlength: 200 });
    const save = h("form", { class: "saved-form" }, name, h("button", { class: "btn btn-primary btn-sm", type: "submit" }, "Save"));
    save.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!name.value.trim()) return;
      try {
        await api("/api/v1/saved-searches", { method: "POST", body: { name: name.value.trim(), query: state.q, from: state.from, to: state.to } });
        toast(`Saved “${name.value.trim()}”`);
        loadSaved();
      } catch (err) { toast(err.message, "error"); }
    });
    savedPop.appendChild(h("div", { class: "pop-h" }, "Save current search"));
    savedPop.appendChild(save);
    savedPop.appendChild(h("div", { class: "pop-h" }, "Saved searches"));
    try {
      const data = await api("/api/v1/saved-searches");
      if (!data.items.length) savedPop.appendChild(h("div", { class: "muted small" }, "None yet."));
      for (const s of data.items) {
        savedPop.appendChild(h("div", { class: "saved-item" },
          h("button", { class: "saved-load", type: "button", title: s.query,
            onclick: () => { savedPop.hidden = true; update({ q: s.query, from: s.time_from || state.from, to: s.time_to || state.to }, false); } },
          h("div", {}, s.name), h("div", { class: "mono muted small" }, s.query || "(all events)")),
          h("button", { class: "ibtn", type: "button", title: "Delete", onclick: async () => {
            await api(`/api/v1/saved-searches/${encodeURIComponent(s.id)}`, { method: "DELETE" });
            loadSaved();
          } }, "✕")));
      }
    } catch (err) { savedPop.appendChild(h("div", { class: "q-error-msg" }, err.message)); }
  }

  const onKey = (e) => {
    const t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) return;
    if (e.key === "r" && !e.metaKey && !e.ctrlKey) run();
  };
  document.addEventListener("keydown", onKey);

  renderPicker();
  run();
  return () => {
    if (ctrl) ctrl.abort();
    io.disconnect();
    if (chart) chart.destroy();
    document.removeEventListener("click", onDocClick);
    document.removeEventListener("keydown", onKey);
  };
}
