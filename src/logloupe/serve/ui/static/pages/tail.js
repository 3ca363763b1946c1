// Live tail: new events as they are stored, streamed (server-sent events), filtered server-side.
import { streamEvents } from "../lib/api.js";
import { h, clear, fmtTime, levelBadge, num, messageBlock } from "../lib/dom.js";
import { queryBar } from "../lib/controls.js";

const MAX_ROWS = 2000;

export function mount(root, ctx) {
  let q = ctx.params.get("q") || "";
  let paused = false;
  let stream = null;
  let buffered = [];
  let received = 0;
  const arrivals = [];

  const bar = queryBar({ q, placeholder: "Filter the stream… e.g. level:>=WARN service:api-gateway", onSubmit: (v) => { q = v; ctx.setParams({ q }); start(); } });
  const dot = h("span", { class: "live-dot" });
  const state = h("span", { class: "live-state", "data-testid": "tail-state" }, "connecting");
  const rate = h("span", { class: "kpi-inline", "data-testid": "tail-rate" }, "0.0");
  const count = h("span", { class: "kpi-inline" }, "0");
  const pauseBtn = h("button", { class: "btn", type: "button", "data-testid": "pause" }, "❚❚ Pause");
  const clearBtn = h("button", { class: "btn btn-ghost", type: "button", onclick: () => { waiting(); received = 0; count.textContent = "0"; } }, "Clear");
  const follow = h("input", { type: "checkbox", checked: true });
  const list = h("div", { class: "tail-list mono", "data-testid": "tail-list", role: "log", "aria-live": "off" });
  const pendingNote = h("span", { class: "muted small" });

  pauseBtn.addEventListener("click", () => {
    paused = !paused;
    pauseBtn.textContent = paused ? "▶ Resume" : "❚❚ Pause";
    pauseBtn.classList.toggle("btn-primary", paused);
    if (!paused) { const b = buffered; buffered = []; addEvents(b); pendingNote.textContent = ""; }
  });

  root.appendChild(h("div", { class: "page tail" },
    h("header", { class: "toolbar" }, bar.el, pauseBtn, clearBtn),
    h("div", { class: "tail-stats" },
      h("span", { class: "live" }, dot, state),
      h("span", {}, rate, h("span", { class: "muted" }, " events/s")),
      h("span", {}, count, h("span", { class: "muted" }, " received")),
      pendingNote,
      h("label", { class: "follow" }, follow, " Follow newest")),
    list));

  function row(ev) {
    const r = h("div", { class: ["tail-row", `lv-row-${ev.level.toLowerCase()}`], dataset: { id: ev.id } },
      h("span", { class: "t-time" }, fmtTime(ev.ts, false)), levelBadge(ev.level),
      h("span", { class: "t-svc" }, ev.service),
      h("span", { class: "t-msg" }, ev.message.length > 2000 || ev.message.includes("\n") ? ev.message.split("\n", 1)[0].slice(0, 2000) : ev.message));
    r.addEventListener("click", () => {
      const next = r.nextElementSibling;
      if (next && next.classList.contains("tail-detail")) { next.remove(); return; }
      r.after(h("div", { class: "tail-detail" }, messageBlock(ev.message),
        h("a", { class: "btn btn-sm", href: `/app/discover?q=${encodeURIComponent(`id:${ev.id}`)}&from=now-7d` }, "Open in Discover")));
    });
    return r;
  }

  function waiting() {
    clear(list).appendChild(h("div", { class: "tail-wait" }, "Waiting for new events",
      q ? [" matching ", h("b", {}, q)] : null, "…"));
  }

  function addEvents(events) {
    if (!events.length) return;
    const wait = list.querySelector(".tail-wait");
    if (wait) wait.remove();
    const frag = document.createDocumentFragment();
    for (const ev of events) frag.appendChild(row(ev));
    list.appendChild(frag);
    while (list.childElementCount > MAX_ROWS) list.firstElementChild.remove();
    if (follow.checked) list.scrollTop = list.scrollHeight;
  }

  function start() {
    if (stream) stream.close();
    bar.setError(null);
    if (!list.querySelector(".tail-row")) waiting();
    state.textContent = "connecting";
    dot.className = "live-dot";
    stream = streamEvents("/api/v1/tail", { q }, (name, data) => {
      if (name === "events") {
        const now = performance.now();
        for (let i = 0; i < data.length; i++) arrivals.push(now);
        received += data.length;
        count.textContent = num(received);
        if (paused) {
          buffered.push(...data);
          if (buffered.length > MAX_ROWS) buffered = buffered.slice(-MAX_ROWS);
          pendingNote.textContent = `${num(buffered.length)} new while paused`;
        } else addEvents(data);
      } else if (name === "dropped") {
        pendingNote.textContent = `${num(data.dropped)} events skipped (too fast for this view)`;
      }
    }, (s, err) => {
      state.textContent = s === "open" ? "live" : s;
      dot.className = `live-dot ${s === "open" ? "on" : s === "error" ? "err" : ""}`;
      if (s === "error" && err) { if (err.status === 400) bar.setError(err); else state.textContent = err.message; }
    });
  }

  const timer = setInterval(() => {
    const cutoff = performance.now() - 5000;
    while (arrivals.length && arrivals[0] < cutoff) arrivals.shift();
    rate.textContent = (arrivals.length / 5).toFixed(1);
  }, 1000);

  start();
  return () => { clearInterval(timer); if (stream) stream.close(); };
}
