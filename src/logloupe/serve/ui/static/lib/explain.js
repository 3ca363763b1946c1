// Explain: POST /api/v1/insights/explain read as server-sent events over fetch (the bearer header
// goes along), the text streaming into a panel, then the insight with citation links and feedback.
// Everything derived from logs reaches the page as text nodes (h() / textContent), never as markup.
import { authHeaders, ApiError, api, readEvents, toLogin } from "./api.js";
import { h, clear, pct, toast } from "./dom.js";

/** POST with a JSON body, read the SSE answer; onEvent(name, data) per frame. Returns {close()}. */
export function postStream(path, body, onEvent, onError) {
  const ctrl = new AbortController();
  (async () => {
    try {
      const res = await fetch(new URL(path, location.origin), {
        method: "POST", signal: ctrl.signal,
        headers: { Accept: "text/event-stream", "Content-Type": "application/json", ...authHeaders() },
        body: JSON.stringify(body),
      });
      if (res.status === 401) { toLogin(); return; }
      if (!res.ok) {
        let data = null;
        try { data = await res.json(); } catch { /* not JSON */ }
        onError(new ApiError(res.status, data));
        return;
      }
      await readEvents(res, onEvent);
    } catch (e) {
      if (e.name !== "AbortError") onError(e);
    }
  })();
  return { close() { ctrl.abort(); } };
}

function discoverHref(q, from, to) {
  const u = new URLSearchParams({ q });
  if (from) u.set("from", from);
  if (to) u.set("to", to);
  return `/app/discover?${u}`;
}

function link(href, text, navigate, attrs = {}) {
  return h("a", { href, ...attrs, onclick: (e) => {
    if (!navigate || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    document.querySelectorAll(".modal-bg.explain").forEach((m) => m.remove());
    navigate(href);
  } }, text);
}

function subjectText(s) {
  if (!s) return "";
  if (s.kind === "pattern") return `pattern ${s.id}`;
  if (s.kind === "event") return `event ${s.id}`;
  return `anomaly ${s.id}${s.service ? ` (${s.service})` : ""}`;
}

/** The final insight: each problem with cause, fixes, confidence, citations as Discover links, feedback. */
export function renderInsight(final, navigate) {
  const box = h("div", { class: "insight", "data-testid": "insight", dataset: { id: final.id } });
  box.appendChild(h("div", { class: "ins-meta muted small" },
    `${subjectText(final.subject)} · ${final.events_considered} events · ${final.provider}`,
    final.usage && final.usage.tokens_in ? ` · ${final.usage.tokens_in} tokens in, ${final.usage.tokens_out} out` : "",
    final.note ? ` · ${final.note}` : ""));
  if (!final.insights.length) box.appendChild(h("p", { class: "muted" }, "Nothing to explain in these events."));
  for (const i of final.insights) {
    const cites = h("div", { class: "ins-cites", "data-testid": "citations" }, h("span", { class: "muted small" }, "Evidence: "));
    for (const c of i.citations) {
      const q = c.event_ids.length ? c.event_ids.map((e) => `id:${e}`).join(" OR ") : `pattern:${c.pattern_id}`;
      cites.appendChild(link(discoverHref(q, c.from, c.to), `${c.event_ids.length} event${c.event_ids.length === 1 ? "" : "s"}`, navigate,
        { class: "cite", "data-testid": "citation", title: c.event_ids.join("\n") }));
      cites.appendChild(h("span", { class: "muted small" }, " of "));
      cites.appendChild(link(discoverHref(`pattern:${c.pattern_id}`), `pattern ${c.pattern_id}`, navigate, { class: "cite mono" }));
      cites.appendChild(h("span", { class: "muted small" }, c.verified ? "  " : " (unverified)  "));
    }
    if (!i.citations.length) cites.appendChild(h("span", { class: "warn-text" }, "[uncited]"));
    box.appendChild(h("section", { class: "ins-item" },
      h("div", { class: "ins-title" }, h("b", {}, i.title),
        h("span", { class: ["conf", i.confidence >= 0.6 ? "hi" : i.confidence >= 0.3 ? "mid" : "lo"], title: "Confidence" }, pct(i.confidence))),
      h("p", {}, i.summary),
      h("div", { class: "sub-h" }, "Probable cause"), h("p", {}, i.probable_cause),
      h("div", { class: "sub-h" }, "Fixes"), h("ol", { class: "ins-fixes" }, i.fixes.map((f) => h("li", {}, f))),
      i.past_incidents && i.past_incidents.length ? h("div", { class: "ins-past" }, i.past_incidents.map((p) =>
        h("div", {}, `Seen before on ${p.seen}, fixed by: `, h("b", {}, p.resolution)))) : null,
      cites,
      h("div", { class: "muted small" }, i.source)));
  }
  box.appendChild(feedbackBar(final));
  return box;
}

function feedbackBar(final) {
  const status = h("span", { class: "muted small", "data-testid": "feedback-status" },
    final.feedback && final.feedback.length ? `Feedback: ${final.feedback.map((f) => f.verdict).join(", ")}` : "");
  const fixed = h("input", { type: "text", class: "q-input small-input", placeholder: "Fixed by…", maxlength: 2000, "aria-label": "Fixed by" });
  async function send(body) {
    try {
      const res = await api(`/api/v1/insights/${final.id}/feedback`, { method: "POST", body });
      final.feedback = res.feedback;
      status.textContent = `Feedback: ${res.feedback.map((f) => f.verdict).join(", ")}`;
      toast("Thanks: feedback stored");
    } catch (e) { toast(e.message, "error"); }
  }
  const form = h("form", { class: "ins-fb" },
    h("span", { class: "muted small" }, "Was this right?"),
    h("button", { class: "btn btn-sm", type: "button", "data-testid": "fb-helpful", onclick: () => send({ verdict: "helpful" }) }, "✓ Helpful"),
    h("button", { class: "btn btn-sm", type: "button", "data-testid": "fb-wrong", onclick: () => send({ verdict: "wrong" }) }, "✗ Wrong"),
    fixed, h("button", { class: "btn btn-sm", type: "submit", "data-testid": "fb-fixed" }, "Save fix"), status);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!fixed.value.trim()) { fixed.focus(); return; }
    send({ verdict: "fixed", fixed_by: fixed.value.trim() });
    fixed.value = "";
  });
  return form;
}

/** Open the explanation panel for {pattern_id | event_id | anomaly_id, from?, to?}. */
export function openExplain(target, navigate) {
  const stream = h("pre", { class: "ex-stream", "data-testid": "explain-stream" });
  const body = h("div", { class: "ex-body" }, h("div", { class: "muted small ex-state" }, "Gathering evidence…"), stream);
  let conn = null;
  const close = () => { if (conn) conn.close(); overlay.remove(); document.removeEventListener("keydown", esc); };
  const esc = (e) => { if (e.key === "Escape") close(); };
  const title = target.pattern_id ? `pattern ${target.pattern_id}` : target.event_id ? "this event" : `anomaly ${target.anomaly_id}`;
  const overlay = h("div", { class: "modal-bg explain", onclick: (e) => { if (e.target === overlay) close(); } },
    h("div", { class: "modal", role: "dialog", "aria-label": "Explanation", "data-testid": "explain" },
      h("div", { class: "modal-h" }, h("div", {}, h("b", {}, "✦ Explain "), h("span", { class: "muted" }, title)),
        h("div", { class: "modal-acts" },
          h("a", { class: "btn btn-sm", href: "/app/insights", onclick: (e) => { if (navigate) { e.preventDefault(); close(); navigate("/app/insights"); } } }, "All insights"),
          h("button", { class: "btn btn-ghost", type: "button", onclick: close, "aria-label": "Close" }, "✕"))),
      body));
  document.addEventListener("keydown", esc);
  document.body.appendChild(overlay);
  const state = body.querySelector(".ex-state");
  conn = postStream("/api/v1/insights/explain", target, (name, data) => {
    if (name === "meta") state.textContent = `Explaining ${data.patterns} pattern(s) from ${data.events} events with ${data.provider}…`;
    else if (name === "delta") {
      if (data.reset) stream.textContent = "";
      stream.textContent += data.text;
      stream.scrollTop = stream.scrollHeight;
    } else if (name === "error") {
      clear(body).appendChild(h("div", { class: "q-error-msg" }, data.message));
    } else if (name === "insight") {
      clear(body).appendChild(renderInsight(data, navigate));
    }
  }, (err) => { clear(body).appendChild(h("div", { class: "q-error-msg" }, err.message)); });
  return close;
}
