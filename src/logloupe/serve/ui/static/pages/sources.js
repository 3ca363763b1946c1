// Sources: the pull sources the server runs (status, last read, position, lag, errors; refreshed
// every 5 s), the input the server rejected (the quarantine, newest first, paged), and how to push
// logs to this server, with copyable snippets using the page's origin.
import { api } from "../lib/api.js";
import { h, clear, num, compact, copyText } from "../lib/dom.js";

const KIND_LABEL = { tail: "File tail", cloudwatch: "AWS CloudWatch", azure: "Azure Monitor" };

function since(epoch) {
  if (!epoch) return "never";
  const s = Date.now() / 1000 - epoch;
  if (s < 60) return `${Math.max(0, Math.round(s))}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  if (s < 86400) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86400)}d ago`;
}

function bytes(n) {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

function lagText(lag) {
  if (!lag) return "—";
  if (typeof lag.bytes === "number") return lag.bytes ? `${bytes(lag.bytes)} behind` : "caught up";
  if (typeof lag.seconds === "number") return lag.seconds < 1 ? "caught up" : `${lag.seconds < 120 ? lag.seconds.toFixed(0) + " s" : Math.round(lag.seconds / 60) + " min"} behind`;
  return "—";
}

function positionText(pos) {
  if (!pos || !Object.keys(pos).length) return "—";
  if (typeof pos.files === "number") return `${num(pos.files)} file${pos.files === 1 ? "" : "s"} (${num(pos.open_files || 0)} open) · ${bytes(pos.bytes || 0)}`;
  if (pos.newest_event_ms) return `newest event ${new Date(pos.newest_event_ms).toLocaleString()}${pos.streams ? ` · ${num(pos.streams)} streams` : ""}`;
  if (pos.floor_ms) return `from ${new Date(pos.floor_ms).toLocaleString()}`;
  return JSON.stringify(pos).slice(0, 120);
}

function snippet(text, label) {
  return h("div", { class: "snippet" }, h("pre", {}, text),
    h("button", { class: "btn btn-sm copy", type: "button", title: `Copy ${label}`, "data-testid": "copy", onclick: () => copyText(text) }, "Copy"));
}

function pushPanel(origin) {
  const host = location.hostname;
  const cards = [
    ["JSON over HTTP", "POST /api/v1/logs", "One JSON object, an array, NDJSON or plain text lines; gzip, deflate and zstd bodies are fine. Answers once the events are durable.",
      `curl -X POST ${origin}/api/v1/logs \\\n  -H 'Content-Type: application/json' \\\n  -d '{"service": "checkout", "level": "error", "message": "card declined"}'`],
    ["Elasticsearch _bulk · Filebeat", "POST /_bulk", "Speaks the Elasticsearch bulk API, so Filebeat, Logstash and the Elasticsearch clients ship unchanged.",
      `# filebeat.yml\noutput.elasticsearch:\n  hosts: ["${origin}"]\n\n# or by hand\ncurl -X POST ${origin}/_bulk \\\n  -H 'Content-Type: application/x-ndjson' \\\n  --data-binary $'{"index":{"_index":"app"}}\\n{"message":"hello"}\\n'`],
    ["OpenTelemetry (OTLP/HTTP)", "POST /v1/logs", "Protobuf or JSON. Point an OpenTelemetry Collector or an SDK's log exporter at this server.",
      `# otel-collector.yaml\nexporters:\n  otlphttp:\n    endpoint: ${origin}\n\n# or an SDK\nOTEL_EXPORTER_OTLP_LOGS_ENDPOINT=${origin}/v1/logs`],
    ["Loki push · Promtail · Alloy", "POST /loki/api/v1/push", "JSON or snappy-compressed protobuf, as Promtail, Grafana Alloy and the Docker Loki driver send it.",
      `# promtail.yaml\nclients:\n  - url: ${origin}/loki/api/v1/push`],
    ["Syslog (UDP / TCP)", "RFC 5424 · RFC 3164", "Off unless the server is started with syslog ports; then rsyslog, syslog-ng or logger can send to it.",
      `LOGLOUPE_SYSLOG_UDP_PORT=5514 LOGLOUPE_SYSLOG_TCP_PORT=5514 logloupe serve\n\nlogger -n ${host} -P 5514 -T "hello from $(hostname)"\n# rsyslog: *.* @@${host}:5514`],
    ["Upload a file", "POST /api/v1/upload", "A whole log file (plain or .gz) in one request; the job reports lines read, parsed and stored.",
      `curl -F file=@app.log -F service=app ${origin}/api/v1/upload`],
  ];
  return h("section", { class: "panel", "data-testid": "push-help" },
    h("div", { class: "panel-h" }, h("h3", {}, "How to send logs"),
      h("span", { class: "muted small" }, "With authentication on, add ", h("code", {}, "-H 'X-API-Key: <key>'"), " (or the client's API-key setting).")),
    h("div", { class: "push-grid" }, cards.map(([title, ep, text, code]) =>
      h("div", { class: "push-card" }, h("h4", {}, title, h("span", { class: "push-ep mono" }, ep)), h("p", {}, text), snippet(code, title)))));
}

// The endpoints' names in the quarantine (GET /api/v1/quarantine?source=).
const QUARANTINE_SOURCES = ["http", "elasticsearch", "otlp", "loki", "syslog", "upload", "file"];
const RAW_PREVIEW = 400;
const QUARANTINE_PAGE = 20;

/** Rejected input with its reason (docs/limits.md): what a sender got a 4xx for, kept to be seen. */
function quarantinePanel() {
  const total = h("span", { class: "muted small", "data-testid": "quarantine-total" });
  const body = h("div", { "data-testid": "quarantine-body" });
  const sourceSel = h("select", { class: "sel", "aria-label": "Source", "data-testid": "quarantine-source", onchange: () => load() },
    h("option", { value: "" }, "All sources"), QUARANTINE_SOURCES.map((v) => h("option", { value: v }, v)));
  const more = h("button", { class: "btn btn-sm", type: "button", "data-testid": "quarantine-more", hidden: true, onclick: () => load(true) }, "Older");
  const tbody = h("tbody", {});
  let before = null;
  let ctrl = null;

  function row(item) {
    const raw = item.raw.length > RAW_PREVIEW ? item.raw.slice(0, RAW_PREVIEW) + " …" : item.raw;
    return h("tr", { dataset: { quarantineId: String(item.id) } },
      h("td", { class: "small", title: new Date(item.received_at * 1000).toLocaleString() }, since(item.received_at)),
      h("td", {}, h("span", { class: "mono" }, item.source)),
      h("td", { class: "small q-reason" }, item.reason),
      h("td", {}, h("pre", { class: "q-raw", title: `${num(item.raw.length)} characters kept` }, raw)));
  }

  async function load(older = false) {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const params = { limit: QUARANTINE_PAGE };
    if (sourceSel.value) params.source = sourceSel.value;
    if (older && before !== null) params.before = before;
    let data;
    try {
      data = await api("/api/v1/quarantine", { params, signal: ctrl.signal });
    } catch (e) {
      if (e.name === "AbortError") return;
      clear(body).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "!"), e.message || String(e)));
      return;
    }
    before = data.next_before;
    more.hidden = before === null;
    total.textContent = `${num(data.total)} kept`;
    if (!older) {
      clear(tbody);
      clear(body);
      if (!data.items.length) {
        body.appendChild(h("div", { class: "empty", "data-testid": "quarantine-empty" }, h("div", { class: "empty-ico" }, "✓"), "Nothing rejected."));
        return;
      }
      body.appendChild(h("table", { class: "ptable", "data-testid": "quarantine-table" },
        h("thead", {}, h("tr", {}, ["Received", "Source", "Reason", "Input as received"].map((t) => h("th", {}, t)))), tbody));
    }
    data.items.forEach((item) => tbody.appendChild(row(item)));
  }

  const panel = h("section", { class: "panel", "data-testid": "quarantine" },
    h("div", { class: "panel-h" }, h("h3", {}, "Rejected input"),
      h("span", { class: "muted small" }, "Kept with the reason, as long as the tenant's logs (", h("code", {}, "GET /api/v1/quarantine"), ")"),
      h("div", { class: "grow" }), total, sourceSel),
    body, h("div", { class: "q-more" }, more));
  return { panel, load };
}

export function mount(root) {
  let timer = null;
  let ctrl = null;
  const body = h("div", { "data-testid": "sources-body" });
  const updated = h("span", { class: "muted small" });
  const rejected = quarantinePanel();
  root.appendChild(h("div", { class: "page sources", "data-testid": "sources" },
    h("header", { class: "toolbar" }, h("h1", {}, "Sources"), h("div", { class: "grow" }), updated,
      h("button", { class: "btn btn-ghost", type: "button", title: "Refresh", onclick: () => { load(); rejected.load(); } }, "↻")),
    h("section", { class: "panel" }, h("div", { class: "panel-h" }, h("h3", {}, "Pull sources"),
      h("span", { class: "muted small" }, "Files and cloud log services this server reads, from the ", h("code", {}, "[[sources]]"), " tables of its configuration")), body),
    rejected.panel,
    pushPanel(location.origin)));

  async function load() {
    if (ctrl) ctrl.abort();
    ctrl = new AbortController();
    const page = root.querySelector(".sources");
    let data;
    try {
      data = await api("/api/v1/sources", { signal: ctrl.signal });
    } catch (e) {
      if (e.name === "AbortError") return;
      clear(body).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "!"), e.message || String(e)));
      page.dataset.ready = "1";
      return;
    }
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
    clear(body);
    if (!data.sources.length) {
      body.appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "⇲"), "No pull sources configured.",
        h("span", { class: "muted small" }, "Push logs with one of the endpoints below, or add a source to the configuration:"),
        snippet(`[[sources]]\ntype = "tail"\nname = "app"\npaths = ["/var/log/app/*.log"]\nservice = "app"`, "source")));
    } else {
      body.appendChild(h("table", { class: "ptable", "data-testid": "sources-table" },
        h("thead", {}, h("tr", {}, ["Name", "Kind", "Status", "Last read", "Position", "Lag", "Events", "Errors"].map((t, i) => h("th", { class: i >= 6 ? "num" : "" }, t)))),
        h("tbody", {}, data.sources.map((s) => h("tr", { dataset: { source: s.id, status: s.status } },
          h("td", {}, h("b", { class: "mono" }, s.id)),
          h("td", {}, KIND_LABEL[s.kind] || s.kind),
          h("td", {}, h("span", { class: `src-status st-${s.status}` }, h("i", {}), s.status)),
          h("td", { title: s.last_read_at ? new Date(s.last_read_at * 1000).toLocaleString() : "" }, since(s.last_read_at)),
          h("td", { class: "small" }, positionText(s.position)),
          h("td", {}, lagText(s.lag)),
          h("td", { class: "num" }, compact(s.events_total), h("div", { class: "muted small" }, `${num(s.batches_total)} batches`)),
          h("td", { class: "num" }, s.errors_total ? h("span", { class: "bad" }, num(s.errors_total)) : h("span", { class: "muted" }, "0"),
            s.last_error ? h("div", { class: "src-err", title: s.last_error }, s.last_error) : null))))));
    }
    page.dataset.ready = "1";
  }

  load();
  rejected.load();  // on demand (↻), not every 5 s: paging back through it must hold still
  timer = setInterval(() => { if (!document.hidden) load(); }, 5000);
  return () => { clearInterval(timer); if (ctrl) ctrl.abort(); };
}
