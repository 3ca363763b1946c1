// Shared controls: the query bar (syntax help, errors at their position) and the time picker.
import { h, clear } from "./dom.js";

export const PRESETS = [
  ["now-5m", "Last 5 minutes"], ["now-15m", "Last 15 minutes"], ["now-1h", "Last 1 hour"],
  ["now-4h", "Last 4 hours"], ["now-12h", "Last 12 hours"], ["now-24h", "Last 24 hours"],
  ["now-7d", "Last 7 days"], ["now-30d", "Last 30 days"],
];

export function timeLabel(from, to) {
  const preset = PRESETS.find(([f]) => f === from);
  if (preset && (!to || to === "now")) return preset[1];
  const m = /^now-(\d+)([smhdw])$/.exec(from || "");
  if (m && (!to || to === "now")) return `Last ${m[1]}${m[2]}`;
  const f = (s) => (s && !s.startsWith("now") ? new Date(s).toLocaleString() : s || "…");
  return `${f(from)} → ${f(to || "now")}`;
}

function toLocalInput(s) {
  let d;
  if (!s || s === "now") d = new Date();
  else if (s.startsWith("now-")) {
    const m = /^now-(\d+)([smhdw])$/.exec(s);
    const mult = { s: 1e3, m: 60e3, h: 3600e3, d: 86400e3, w: 604800e3 };
    d = new Date(Date.now() - (m ? Number(m[1]) * mult[m[2]] : 0));
  } else d = new Date(s);
  if (isNaN(d)) d = new Date();
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A button + popover; onChange(from, to). */
export function timePicker({ from, to, onChange }) {
  const label = h("span", { class: "tp-label" }, timeLabel(from, to));
  const btn = h("button", { class: "btn tp-btn", type: "button", "aria-haspopup": "dialog", "data-testid": "time-picker" },
    h("span", { class: "ico" }, "◷"), label, h("span", { class: "caret" }, "▾"));
  const fromIn = h("input", { type: "datetime-local", step: "1", value: toLocalInput(from), "aria-label": "From" });
  const toIn = h("input", { type: "datetime-local", step: "1", value: toLocalInput(to), "aria-label": "To" });
  const pop = h("div", { class: "popover tp-pop", hidden: true, role: "dialog" },
    h("div", { class: "tp-cols" },
      h("div", { class: "tp-presets" }, h("div", { class: "pop-h" }, "Relative"),
        PRESETS.map(([f, l]) => h("button", {
          class: ["tp-preset", f === from && (!to || to === "now") ? "on" : ""], type: "button",
          onclick: () => { pop.hidden = true; onChange(f, "now"); },
        }, l))),
      h("div", { class: "tp-abs" }, h("div", { class: "pop-h" }, "Absolute"),
        h("label", {}, "From", fromIn), h("label", {}, "To", toIn),
        h("button", {
          class: "btn btn-primary", type: "button",
          onclick: () => {
            const f = new Date(fromIn.value), t = new Date(toIn.value);
            if (isNaN(f) || isNaN(t) || f > t) return;
            pop.hidden = true;
            onChange(f.toISOString(), t.toISOString());
          },
        }, "Apply"))));
  btn.addEventListener("click", (e) => { e.stopPropagation(); pop.hidden = !pop.hidden; });
  document.addEventListener("click", (e) => { if (!pop.contains(e.target)) pop.hidden = true; });
  return h("div", { class: "tp" }, btn, pop);
}

const HELP = [
  ["refused", "token in the message (any case)"],
  ['"could not connect"', "phrase, in order"],
  ["tim*", "wildcard in the message"],
  ["service:auth", "exact field value"],
  ["service:(auth OR payments)", "any of the values"],
  ["level:>=WARN", "levels TRACE < DEBUG < INFO < WARN < ERROR < FATAL"],
  ["attr.status:503  latency_ms:>500", "attributes; numbers compare as numbers"],
  ["user:*", "attribute exists"],
  ["pattern:1a2b3c4d5e6f7a8b", "events of one pattern"],
  ["var.0:alice  var:10.0.0.*", "a pattern variable (0-based position) / any variable"],
  ["/time(out|d)/", "regular expression"],
  ["a AND b, a OR b, NOT a, -a, ( )", "boolean logic"],
];

/** The query input; onSubmit(q). Returns {el, setError(err), focus(), value()} */
export function queryBar({ q, onSubmit, placeholder = "Search logs… e.g. level:ERROR service:payments", extra = [] }) {
  const input = h("input", {
    class: "q-input", type: "search", value: q || "", placeholder, spellcheck: "false",
    autocomplete: "off", "aria-label": "Query", "data-testid": "query",
  });
  const err = h("div", { class: "q-error", hidden: true, role: "alert", "data-testid": "query-error" });
  const help = h("div", { class: "popover q-help", hidden: true },
    h("div", { class: "pop-h" }, "Query language"),
    h("table", {}, h("tbody", {}, HELP.map(([ex, what]) => h("tr", {},
      h("td", {}, h("code", { class: "q-ex", onclick: () => { input.value = ex; help.hidden = true; input.focus(); } }, ex)),
      h("td", { class: "muted" }, what))))),
    h("div", { class: "muted small" }, "Press / to focus the query, Enter to run, Esc to leave."));
  const helpBtn = h("button", { class: "btn btn-ghost q-help-btn", type: "button", title: "Syntax help", "aria-label": "Syntax help" }, "?");
  helpBtn.addEventListener("click", (e) => { e.stopPropagation(); help.hidden = !help.hidden; });
  document.addEventListener("click", (e) => { if (!help.contains(e.target)) help.hidden = true; });
  const form = h("form", { class: "q-form", role: "search" },
    h("div", { class: "q-box" }, h("span", { class: "q-ico" }, "⌕"), input, helpBtn, help),
    ...extra,
    h("button", { class: "btn btn-primary", type: "submit", "data-testid": "run" }, "Search"));
  form.addEventListener("submit", (e) => { e.preventDefault(); onSubmit(input.value.trim()); });
  input.addEventListener("keydown", (e) => { if (e.key === "Escape") input.blur(); });
  input.addEventListener("input", () => { err.hidden = true; input.classList.remove("bad"); });
  return {
    el: h("div", { class: "q-wrap" }, form, err),
    input,
    setError(e) {
      clear(err);
      if (!e) { err.hidden = true; input.classList.remove("bad"); return; }
      err.hidden = false;
      input.classList.add("bad");
      err.appendChild(h("div", { class: "q-error-msg" }, e.message));
      if (e.position !== null && e.position !== undefined) {
        const text = input.value;
        const pos = Math.min(e.position, text.length);
        err.appendChild(h("pre", { class: "q-caret" }, text, "\n", " ".repeat(pos) + "^"));
        input.focus();
        input.setSelectionRange(pos, Math.min(text.length, pos + 1));
      }
    },
  };
}
