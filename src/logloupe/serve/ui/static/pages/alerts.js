// Alerts: history (firing, resolved, suppressed, silenced, with every delivery), rules and silences.
// Served by the UI shell at /app/alerts; notification buttons link here (?tab=history&id=N,
// ?tab=silences&rule_id=…&group_key=…). All text goes in as text nodes (lib/dom.js h()).
import { api } from "../lib/api.js";
import { h, clear, num, toast } from "../lib/dom.js";

const TABS = [["history", "History"], ["rules", "Rules"], ["silences", "Silences"]];
const STATES = ["", "firing", "resolved", "suppressed", "silenced"];
const when = (epoch) => new Date(epoch * 1000).toLocaleString();

export function mount(root, ctx) {
  const state = {
    tab: ctx.params.get("tab") || (ctx.params.get("rule_id") ? "silences" : "history"),
    state: ctx.params.get("state") || "",
    id: ctx.params.get("id") || "",
  };
  const body = h("div", { class: "panel", "data-testid": "alerts-body" });
  const seg = h("div", { class: "seg", role: "tablist", "aria-label": "Alerts" }, TABS.map(([k, l]) =>
    h("button", { type: "button", role: "tab", class: state.tab === k ? "on" : "", dataset: { tab: k },
      onclick: () => { state.tab = k; state.id = ""; sync(); render(); } }, l)));
  root.appendChild(h("div", { class: "page alerts" }, h("header", { class: "toolbar" }, h("h1", {}, "Alerts"), h("div", { class: "grow" }), seg), body));

  function sync() {
    seg.querySelectorAll("button").forEach((b) => b.classList.toggle("on", b.dataset.tab === state.tab));
    ctx.setParams({ tab: state.tab === "history" ? "" : state.tab, state: state.state, id: state.id }, true);
  }

  function failed(e) {
    clear(body).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "!"), e.message || String(e)));
  }

  async function render() {
    clear(body).appendChild(h("div", { class: "empty small muted" }, "Loading…"));
    try {
      if (state.tab === "rules") await rules();
      else if (state.tab === "silences") await silences();
      else await historyTab();
    } catch (e) { failed(e); }
  }

  async function historyTab() {
    const params = { limit: 200, state: state.state };
    const data = await api("/api/v1/alerts/history", { params });
    const pick = h("select", { class: "sel", "aria-label": "State", "data-testid": "alert-state" },
      STATES.map((s) => h("option", { value: s, selected: s === state.state }, s || "All states")));
    pick.addEventListener("change", () => { state.state = pick.value; sync(); render(); });
    const rows = data.items.map((it) => {
      const n = it.notification || {};
      const deliveries = it.deliveries.map((d) =>
        h("div", { class: "small", dataset: { result: d.result } },
          `${d.channel}${d.target ? " → " + d.target : ""}: ${d.result}`,
          d.attempts > 1 ? ` after ${d.attempts} attempts` : "", d.error ? ` (${d.error})` : ""));
      const detail = h("tr", { class: "detail", hidden: String(it.id) !== state.id },
        h("td", { colspan: 6 },
          n.summary ? h("p", {}, n.summary) : null,
          n.pattern ? h("div", {}, h("b", {}, "Pattern "), h("code", {}, n.pattern)) : null,
          n.insight ? h("div", {}, h("b", {}, "Insight "), n.insight) : null,
          n.explanation ? h("div", {}, h("b", {}, "Why "), n.explanation) : null,
          (n.samples || []).length ? h("pre", { class: "samples" }, n.samples.join("\n")) : null,
          n.links ? h("a", { href: n.links.search }, "Search these logs") : null));
      const row = h("tr", { class: String(it.id) === state.id ? "sel" : "", dataset: { id: it.id, state: it.state },
        onclick: () => { detail.hidden = !detail.hidden; } },
        h("td", {}, when(it.at)), h("td", {}, h("span", { class: `alert-state s-${it.state}` }, it.state)),
        h("td", {}, it.title), h("td", {}, it.rule_name),
        h("td", { class: "num" }, num(it.matches), it.suppressed ? ` (+${num(it.suppressed)} suppressed)` : ""),
        h("td", {}, deliveries.length ? deliveries : h("span", { class: "muted small" }, "—")));
      return [row, detail];
    });
    clear(body).append(
      h("div", { class: "panel-h" }, h("span", { class: "muted small" }, `${data.items.length} entries`), pick),
      data.items.length
        ? h("table", { class: "ptable", "data-testid": "alert-history" },
          h("thead", {}, h("tr", {}, ["When", "State", "Alert", "Rule", "Matches", "Notified"].map((t) => h("th", {}, t)))),
          h("tbody", {}, rows))
        : h("div", { class: "empty" }, "No alerts yet."));
  }

  async function rules() {
    const data = await api("/api/v1/alerts/rules");
    const rows = data.items.map((r) => h("tr", { dataset: { id: r.id } },
      h("td", {}, r.name), h("td", {}, r.type), h("td", {}, r.channels.join(", ") || "—"), h("td", {}, r.severity),
      h("td", { class: "small" }, h("code", {}, JSON.stringify(r.params))),
      h("td", { class: "small muted" }, r.last_eval_at ? `${when(r.last_eval_at)} (${r.last_eval_ms.toFixed(1)} ms)` : "streaming"),
      h("td", {}, h("input", { type: "checkbox", checked: r.enabled, "aria-label": `Enable ${r.name}`,
        onchange: async (ev) => {
          try { await api(`/api/v1/alerts/rules/${r.id}`, { method: "PUT", body: { ...spec(r), enabled: ev.target.checked } }); toast("Rule saved"); }
          catch (e) { ev.target.checked = !ev.target.checked; toast(e.message, "error"); }
        } }))));
    const form = ruleForm();
    clear(body).append(
      h("table", { class: "ptable", "data-testid": "alert-rules" },
        h("thead", {}, h("tr", {}, ["Name", "Type", "Channels", "Severity", "Parameters", "Last evaluation", "On"].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows)),
      form);
  }

  function spec(r) {
    const targets = { ...r.targets };
    delete targets.webhook_secret; // write-only: omitted keeps the stored secret
    return { name: r.name, type: r.type, enabled: r.enabled, severity: r.severity, channels: r.channels, params: r.params, targets };
  }

  function ruleForm() {
    const name = h("input", { class: "q-input", placeholder: "Rule name", "aria-label": "Rule name" });
    const type = h("select", { class: "sel", "aria-label": "Rule type" }, ["query", "pattern", "anomaly", "classification", "silence"].map((t) => h("option", { value: t }, t)));
    const channels = ["email", "slack", "teams", "webhook"].map((c) => h("label", { class: "small" }, h("input", { type: "checkbox", value: c }), ` ${c} `));
    const params = h("input", { class: "q-input", value: '{"query": "level:>=ERROR", "threshold": 10}', "aria-label": "Parameters (JSON)" });
    const submit = async (ev) => {
      ev.preventDefault();
      let p;
      try { p = JSON.parse(params.value || "{}"); } catch { toast("Parameters must be JSON", "error"); return; }
      const chosen = channels.map((l) => l.firstChild).filter((c) => c.checked).map((c) => c.value);
      try {
        await api("/api/v1/alerts/rules", { method: "POST", body: { name: name.value, type: type.value, channels: chosen, params: p } });
        toast("Rule created"); render();
      } catch (e) { toast(e.message, "error"); }
    };
    return h("form", { class: "panel-h", onsubmit: submit, "data-testid": "rule-form" }, h("b", {}, "New rule"), name, type, channels, params, h("button", { class: "btn", type: "submit" }, "Create"));
  }

  async function silences() {
    const data = await api("/api/v1/alerts/silences");
    const rule = h("input", { class: "q-input", placeholder: "Rule id (empty: all rules)", value: ctx.params.get("rule_id") || "", "aria-label": "Rule id" });
    const key = h("input", { class: "q-input", placeholder: "Group key (empty: all)", value: ctx.params.get("group_key") || "", "aria-label": "Group key" });
    const hours = h("input", { class: "q-input small-input", type: "number", min: "0.25", step: "0.25", value: "1", "aria-label": "Hours" });
    const reason = h("input", { class: "q-input", placeholder: "Reason", "aria-label": "Reason" });
    const submit = async (ev) => {
      ev.preventDefault();
      try {
        await api("/api/v1/alerts/silences", { method: "POST", body: { rule_id: rule.value, group_key: key.value, duration_s: Number(hours.value) * 3600, reason: reason.value } });
        toast("Silenced"); render();
      } catch (e) { toast(e.message, "error"); }
    };
    const rows = data.items.map((s) => h("tr", {},
      h("td", {}, s.rule_id || "all rules"), h("td", {}, s.group_key || "all keys"), h("td", {}, s.reason),
      h("td", {}, when(s.expires_at)),
      h("td", {}, h("button", { class: "btn", type: "button", onclick: async () => {
        try { await api(`/api/v1/alerts/silences/${s.id}`, { method: "DELETE" }); render(); } catch (e) { toast(e.message, "error"); }
      } }, "End"))));
    clear(body).append(
      h("form", { class: "panel-h", onsubmit: submit, "data-testid": "silence-form" }, h("b", {}, "Silence"), rule, key, hours, h("span", { class: "small muted" }, "hours"), reason, h("button", { class: "btn", type: "submit" }, "Silence")),
      rows.length
        ? h("table", { class: "ptable", "data-testid": "alert-silences" }, h("thead", {}, h("tr", {}, ["Rule", "Group key", "Reason", "Expires", ""].map((t) => h("th", {}, t)))), h("tbody", {}, rows))
        : h("div", { class: "empty small" }, "No active silences."));
  }

  render();
}
