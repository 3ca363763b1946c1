// Insights: the tenant's recent explanations (newest first), each with its citations and feedback.
// Explain something from Patterns (✦ Explain on a row) or Discover (✦ Explain on an opened event).
import { api } from "../lib/api.js";
import { h, clear, ago, fmtTime, toast } from "../lib/dom.js";
import { renderInsight } from "../lib/explain.js";

export function mount(root, ctx) {
  const list = h("div", { class: "ins-list", "data-testid": "insights" });
  const page = h("div", { class: "page insights" },
    h("header", { class: "toolbar" }, h("h1", {}, "Insights"), h("div", { class: "grow" }),
      h("a", { class: "btn", href: "/app/patterns", onclick: (e) => { e.preventDefault(); ctx.navigate("/app/patterns"); } }, "Explain a pattern")),
    list);
  root.appendChild(page);
  const ctrl = new AbortController();

  async function load() {
    page.dataset.ready = "0";
    let data;
    try {
      data = await api("/api/v1/insights", { params: { limit: 50 }, signal: ctrl.signal });
    } catch (e) {
      if (e.name !== "AbortError") toast(e.message, "error");
      return;
    }
    clear(list);
    if (!data.items.length) {
      list.appendChild(h("div", { class: "empty big" }, h("div", { class: "empty-ico" }, "✦"),
        h("h2", {}, "No insights yet"),
        h("p", { class: "muted" }, "Use ✦ Explain on a pattern, or on an event opened in Discover: the explanation streams in, cites the events behind it, and shows up here.")));
    }
    for (const item of data.items) {
      const head = h("summary", { class: "ins-head" },
        h("b", {}, item.title), " ",
        h("span", { class: "muted small", title: fmtTime(item.created) }, `${item.subject.kind} · ${ago(item.created)} · ${item.provider}`));
      const card = h("details", { class: "panel ins-card", dataset: { id: item.id } }, head, renderInsight(item, ctx.navigate));
      if (list.childElementCount === 0) card.open = true;
      list.appendChild(card);
    }
    page.dataset.ready = "1";
  }
  load();
  return () => ctrl.abort();
}
