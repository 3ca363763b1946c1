// DOM helpers. Every string reaches the page as a text node or an attribute value: no
// innerHTML anywhere, so log text can never become markup or script.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === "class") el.setAttribute("class", Array.isArray(v) ? v.filter(Boolean).join(" ") : v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value" && "value" in el) el.value = v;
    else if (k === "checked" || k === "disabled" || k === "selected") el[k] = !!v;
    else if (/^(href|src)$/.test(k) && /^\s*javascript:/i.test(String(v))) continue;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** h("div", {class: "x", onclick: fn}, "text", child) */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export const LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];
export const LEVEL_COLORS = {
  TRACE: "var(--lv-trace)", DEBUG: "var(--lv-debug)", INFO: "var(--lv-info)",
  WARN: "var(--lv-warn)", ERROR: "var(--lv-error)", FATAL: "var(--lv-fatal)", __other__: "var(--muted)",
};
const PALETTE = ["#60a5fa", "#34d399", "#fbbf24", "#f472b6", "#a78bfa", "#22d3ee", "#fb923c", "#94a3b8", "#4ade80", "#e879f9", "#f87171", "#2dd4bf"];
export function seriesColor(key, i) {
  return LEVEL_COLORS[key] || PALETTE[i % PALETTE.length];
}

export function levelBadge(level) {
  return h("span", { class: `lv lv-${String(level).toLowerCase()}` }, level);
}

const nf = new Intl.NumberFormat();
export function num(n) { return nf.format(n); }
export function compact(n) {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + "B";
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (n >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return nf.format(Math.round(n));
}
export function pct(x) { return (x * 100).toFixed(x < 0.01 && x > 0 ? 2 : 1) + "%"; }

export function fmtTime(iso, withDate = true) {
  const d = new Date(iso);
  if (isNaN(d)) return String(iso);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  const t = `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
  return withDate ? `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${t}` : t;
}
export function fmtShort(ms, spanMs) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  if (spanMs > 2 * 86400e3) return `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  if (spanMs > 600e3) return `${p(d.getHours())}:${p(d.getMinutes())}`;
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
export function ago(iso) {
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

export function toast(text, kind = "info") {
  const el = h("div", { class: `toast toast-${kind}`, role: "status" }, text);
  document.getElementById("toasts").appendChild(el);
  setTimeout(() => el.classList.add("out"), 2600);
  setTimeout(() => el.remove(), 3000);
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const ta = h("textarea", { style: { position: "fixed", opacity: "0" } });
    ta.value = text;
    document.body.appendChild(ta);
    ta.select();
    document.execCommand("copy");
    ta.remove();
  }
  toast("Copied to clipboard");
}

/** Quote a value for the query language: field:"value" */
export function quote(value) {
  return '"' + String(value).replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
}

export function debounce(fn, ms) {
  let t;
  return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), ms); };
}

/** A message too long for a row is shown cut, with a button for the rest (big logs stay fast). */
export function messageBlock(message, limitLines = 40, limitChars = 8000) {
  const lines = message.split("\n");
  const long = lines.length > limitLines || message.length > limitChars;
  const pre = h("pre", { class: "msg-pre" });
  if (!long) { pre.textContent = message; return pre; }
  let cut = lines.slice(0, limitLines).join("\n");
  if (cut.length > limitChars) cut = cut.slice(0, limitChars);
  pre.textContent = cut;
  const more = h("button", { class: "btn btn-sm", type: "button" },
    `Show all (${num(lines.length)} lines, ${compact(message.length)} chars)`);
  more.addEventListener("click", () => { pre.textContent = message; more.remove(); });
  return h("div", { class: "msg-wrap" }, pre, h("div", { class: "msg-more" }, h("span", { class: "muted" }, "Truncated for speed. "), more));
}
