// Settings: the tenant (organisation) you are signed in to — members and roles, invitations, API keys,
// retention, ingest quotas and the LLM policy — over /api/v1/tenant*, /api/v1/keys. Forms are built
// from what GET /api/v1/tenant says the API accepts (options.*), never from lists kept here.
// Actions the role cannot do are not offered; the API enforces the same rules anyway.
// In single-user local mode (no auth) the page says so, and shows what applies there.
import { api } from "../lib/api.js";
import { h, clear, num, toast, copyText } from "../lib/dom.js";

const when = (epoch) => (epoch ? new Date(epoch * 1000).toLocaleString() : "—");

function since(epoch) {
  if (!epoch) return "never";
  const s = Date.now() / 1000 - epoch;
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function bytesText(n) {
  if (!n) return "unlimited";
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${num(n)} bytes`;
}

/** A button that asks once more ("Confirm?") before it acts: no browser dialogs. */
function confirmButton(label, confirmLabel, action, attrs = {}) {
  let armed = null;
  const btn = h("button", { class: "btn btn-sm", type: "button", ...attrs }, label);
  btn.addEventListener("click", async () => {
    if (!armed) {
      btn.textContent = confirmLabel;
      btn.classList.add("btn-danger");
      armed = setTimeout(() => { armed = null; btn.textContent = label; btn.classList.remove("btn-danger"); }, 4000);
      return;
    }
    clearTimeout(armed);
    armed = null;
    btn.disabled = true;
    try { await action(); } catch (e) { toast(e.message, "error"); btn.disabled = false; btn.textContent = label; btn.classList.remove("btn-danger"); }
  });
  return btn;
}

/** A secret shown exactly once, with a copy button. */
function secretBox(title, secret, hint) {
  return h("div", { class: "secret-box", "data-testid": "secret", role: "status" },
    h("div", { class: "secret-h" }, h("b", {}, title), h("span", { class: "muted small" }, "Shown only now: copy it somewhere safe.")),
    h("div", { class: "snippet" }, h("pre", { class: "mono", "data-testid": "secret-value" }, secret),
      h("button", { class: "btn btn-sm copy", type: "button", onclick: () => copyText(secret) }, "Copy")),
    hint ? h("div", { class: "snippet" }, h("pre", { class: "mono" }, hint)) : null);
}

function panel(title, sub, ...children) {
  return h("section", { class: "panel" }, h("div", { class: "panel-h" }, h("h3", {}, title), sub ? h("span", { class: "muted small" }, sub) : null), ...children);
}

function select(options, value, attrs) {
  return h("select", { class: "sel", ...attrs }, options.map((o) => h("option", { value: o, selected: o === value }, o)));
}

export function mount(root) {
  const body = h("div", { class: "settings-body" }, h("div", { class: "empty small muted" }, "Loading…"));
  const page = h("div", { class: "page settings", "data-testid": "settings" },
    h("header", { class: "toolbar" }, h("h1", {}, "Settings")), body);
  root.appendChild(page);
  let tenant = null;

  async function load() {
    page.dataset.ready = "";
    try {
      tenant = await api("/api/v1/tenant");
    } catch (e) {
      clear(body).appendChild(h("div", { class: "empty" }, h("div", { class: "empty-ico" }, "!"), e.message || String(e)));
      page.dataset.ready = "1";
      return;
    }
    const t = tenant;
    const admin = t.role === "admin";
    const local = !t.auth_enabled;
    const loads = [];
    const parts = [orgPanel(t, local)];
    if (!local && !admin) {
      parts.push(h("div", { class: "notice", "data-testid": "not-admin" },
        `You are ${t.role === "editor" ? "an editor" : `a ${t.role}`} here: retention, quotas and the LLM policy are shown read-only; only an admin can change them, and manages members and API keys.`));
    }
    if (!local && admin) {
      const members = membersPanel(t);
      const keys = keysPanel(t);
      parts.push(members.el, keys.el);
      loads.push(members.load(), keys.load());
    }
    parts.push(h("div", { class: "grid-2" }, dataPanel(t, admin, local), llmPanel(t, admin, local)));
    clear(body).append(...parts);
    await Promise.all(loads);
    page.dataset.ready = "1";
  }

  function orgPanel(t, local) {
    const facts = [
      ["Organisation", t.name], ["Tenant id", t.id], ["Signed in as", t.user], ["Your role", t.role],
      ["Retention", `${num(t.retention_days)} days`],
    ];
    return panel("Organisation", null,
      local ? h("div", { class: "notice", "data-testid": "local-mode" },
        h("b", {}, "Single-user local mode. "),
        "Authentication is off, so this server listens on loopback only and everyone who can reach it acts as the admin of the ",
        h("code", {}, t.id), " tenant. Users, roles, invitations and API keys take effect once the server runs with ",
        h("code", {}, "--auth"), " (and ", h("code", {}, "logloupe users create-admin"), "). What applies now: the retention and ingest quotas below, and the server's LLM settings.") : null,
      h("dl", { class: "facts", "data-testid": "org-facts" }, facts.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)))));
  }

  // -- members and invitations --------------------------------------------------------------------

  function membersPanel(t) {
    const table = h("div", { "data-testid": "members" });
    const invites = h("div", { "data-testid": "invitations" });
    const reveal = h("div");
    const role = select(t.options.roles, "viewer", { "aria-label": "Role for the invitation" });
    const email = h("input", { type: "text", placeholder: "Email (optional: only this address may accept)", "aria-label": "Invitation email", class: "grow" });
    const form = h("form", { class: "inline-form", "data-testid": "invite-form" }, h("b", {}, "Invite"), email, role,
      h("button", { class: "btn btn-primary", type: "submit" }, "Create invitation"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const inv = await api("/api/v1/tenant/invitations", { method: "POST", body: { role: role.value, email: email.value.trim() } });
        email.value = "";
        clear(reveal).appendChild(secretBox(`Invitation for a new ${inv.role}`, inv.token,
          `# They create their account with the token as the organisation:\ncurl -X POST ${location.origin}/api/v1/auth/register \\\n  -H 'Content-Type: application/json' \\\n  -d '{"username": "…", "email": "…", "password": "…", "tenant": "${inv.token}"}'`));
        await loadInvites();
      } catch (e) { toast(e.message, "error"); }
    });

    async function loadMembers() {
      const data = await api("/api/v1/tenant/members");
      clear(table).appendChild(h("table", { class: "ptable" },
        h("thead", {}, h("tr", {}, ["Member", "Email", "Role", "Since", ""].map((x) => h("th", {}, x)))),
        h("tbody", {}, data.items.map((m) => {
          const me = m.username === t.user;
          const pick = select(t.options.roles, m.role, { "aria-label": `Role of ${m.username}`, "data-testid": "member-role" });
          pick.addEventListener("change", async () => {
            try {
              await api(`/api/v1/tenant/members/${encodeURIComponent(m.user_id)}`, { method: "PUT", body: { role: pick.value } });
              toast(`${m.username} is now ${pick.value}`);
              if (me) load(); else loadMembers();
            } catch (e) { pick.value = m.role; toast(e.message, "error"); }
          });
          return h("tr", { dataset: { user: m.username } },
            h("td", {}, h("b", {}, m.username), me ? h("span", { class: "tag" }, "you") : null),
            h("td", { class: "muted" }, m.email),
            h("td", {}, pick),
            h("td", { class: "muted small" }, when(m.since)),
            h("td", { class: "num" }, confirmButton(me ? "Leave" : "Remove", "Confirm remove", async () => {
              await api(`/api/v1/tenant/members/${encodeURIComponent(m.user_id)}`, { method: "DELETE" });
              toast(`${m.username} removed`);
              await loadMembers();
            }, { "data-act": "remove" })));
        }))));
    }

    async function loadInvites() {
      const data = await api("/api/v1/tenant/invitations");
      const open = data.items.filter((i) => !i.used && i.expires_at > Date.now() / 1000);
      clear(invites);
      if (!open.length) return;
      invites.appendChild(h("table", { class: "ptable" },
        h("thead", {}, h("tr", {}, ["Open invitation", "Role", "Email", "Expires", ""].map((x) => h("th", {}, x)))),
        h("tbody", {}, open.map((i) => h("tr", { dataset: { invitation: i.id } },
          h("td", { class: "mono small" }, i.id), h("td", {}, i.role), h("td", { class: "muted" }, i.email || "anyone with the token"),
          h("td", { class: "muted small" }, when(i.expires_at)),
          h("td", { class: "num" }, confirmButton("Withdraw", "Confirm withdraw", async () => {
            await api(`/api/v1/tenant/invitations/${encodeURIComponent(i.id)}`, { method: "DELETE" });
            await loadInvites();
          })))))));
    }

    const el = panel("Members", "Roles: viewer (read), editor (saved searches, alert rules, ingest), admin (everything here)",
      table, form, reveal, invites);
    return { el, load: () => Promise.all([loadMembers(), loadInvites()]).catch((e) => toast(e.message, "error")) };
  }

  // -- API keys -------------------------------------------------------------------------------------

  function keysPanel(t) {
    const list = h("div", { "data-testid": "keys" });
    const reveal = h("div");
    const name = h("input", { type: "text", placeholder: "Key name, e.g. filebeat on web-1", "aria-label": "Key name", class: "grow", maxlength: "200" });
    const role = select(t.options.key_roles, t.options.key_roles[0], { "aria-label": "Key role" });
    const sources = h("input", { type: "text", placeholder: "Sources (optional, comma-separated globs)", "aria-label": "Key sources" });
    const form = h("form", { class: "inline-form", "data-testid": "key-form" }, h("b", {}, "New key"), name, role, sources,
      h("button", { class: "btn btn-primary", type: "submit" }, "Create key"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      if (!name.value.trim()) { toast("Give the key a name", "error"); return; }
      try {
        const src = sources.value.split(",").map((s) => s.trim()).filter(Boolean);
        const key = await api("/api/v1/keys", { method: "POST", body: { name: name.value.trim(), role: role.value, sources: src } });
        name.value = ""; sources.value = "";
        clear(reveal).appendChild(secretBox(`API key “${key.name}” (${key.role})`, key.key,
          `curl -X POST ${location.origin}/api/v1/logs -H 'X-API-Key: ${key.key}' -d '{"message": "hello"}'`));
        await loadKeys();
      } catch (e) { toast(e.message, "error"); }
    });

    async function loadKeys() {
      const data = await api("/api/v1/keys");
      clear(list);
      if (!data.items.length) { list.appendChild(h("div", { class: "empty small" }, "No API keys yet. Shippers (Filebeat, OTLP, Loki, curl) send with one.")); return; }
      list.appendChild(h("table", { class: "ptable" },
        h("thead", {}, h("tr", {}, ["Name", "Key", "Role", "Sources", "Created", "Last used", ""].map((x) => h("th", {}, x)))),
        h("tbody", {}, data.items.map((k) => h("tr", { class: k.revoked ? "revoked" : "", dataset: { key: k.id } },
          h("td", {}, h("b", {}, k.name)),
          h("td", { class: "mono small" }, `${k.prefix}…`),
          h("td", {}, k.role),
          h("td", { class: "small" }, k.sources.length ? k.sources.join(", ") : h("span", { class: "muted" }, "any")),
          h("td", { class: "muted small", title: when(k.created_at) }, `${since(k.created_at)} by ${k.created_by}`),
          h("td", { class: "muted small", title: when(k.last_used_at) }, since(k.last_used_at)),
          h("td", { class: "num" }, k.revoked
            ? h("span", { class: "tag", title: when(k.revoked_at) }, "revoked")
            : confirmButton("Revoke", "Confirm revoke", async () => {
              await api(`/api/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
              toast(`Key ${k.name} revoked`);
              await loadKeys();
            }, { "data-act": "revoke" })))))));
    }

    const el = panel("API keys", "For machines that send logs (ingest) or read them (viewer); stored hashed, the secret is shown once", form, reveal, list);
    return { el, load: () => loadKeys().catch((e) => toast(e.message, "error")) };
  }

  // -- retention and quotas -------------------------------------------------------------------------

  function dataPanel(t, admin, local) {
    const lim = t.options.retention_days || {};
    const days = h("input", { type: "number", min: String(lim.min || 1), max: String(lim.max || 3650), value: String(t.retention_days), "aria-label": "Retention days", disabled: !admin, class: "num-in" });
    const retention = h("form", { class: "inline-form", "data-testid": "retention-form" },
      h("label", {}, "Keep events for ", days, " days"),
      admin ? h("button", { class: "btn", type: "submit" }, "Save") : null);
    retention.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const r = await api("/api/v1/tenant/retention", { method: "PUT", body: { days: Number(days.value) } });
        toast(`Retention: ${r.retention_days} days; older events deleted`);
        load();
      } catch (e) { toast(e.message, "error"); }
    });
    const q = t.quotas;
    const field = (label, key, value, step) => {
      const input = h("input", { type: "number", min: "0", step, value: String(value), "aria-label": label, disabled: !admin, class: "num-in", dataset: { quota: key } });
      return [h("label", { class: "q-row" }, h("span", {}, label), input), input];
    };
    const [rateRow, rate] = field("Events per second (sustained)", "rate_per_s", q.rate_per_s, "any");
    const [burstRow, burst] = field("Burst (events at once)", "burst", q.burst, "1");
    const [dailyRow, daily] = field("Bytes per UTC day", "daily_bytes", q.daily_bytes, "1");
    const quotas = h("form", { class: "stack-form", "data-testid": "quota-form" }, rateRow, burstRow, dailyRow,
      h("div", { class: "muted small" }, `Now: ${q.rate_per_s ? `${num(q.rate_per_s)} events/s, burst ${num(q.burst)}` : "no rate limit"} · ${bytesText(q.daily_bytes)} per day. 0 means unlimited; beyond a quota, ingest answers 429.`),
      admin ? h("div", {}, h("button", { class: "btn", type: "submit" }, "Save quotas")) : null);
    quotas.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("/api/v1/tenant/quotas", { method: "PUT", body: { rate_per_s: Number(rate.value), burst: Number(burst.value), daily_bytes: Number(daily.value) } });
        toast("Quotas saved");
        load();
      } catch (e) { toast(e.message, "error"); }
    });
    return panel("Retention and quotas", local ? "These apply in local mode too" : null,
      h("div", { class: "sub-h" }, "Retention"), retention,
      h("div", { class: "sub-h gap-top" }, "Ingest quotas"), quotas);
  }

  // -- LLM policy -----------------------------------------------------------------------------------

  function llmPanel(t, admin, local) {
    const allowed = new Set(t.llm.allowed_providers);
    const boxes = t.options.providers.map((p) => {
      const box = h("input", { type: "checkbox", value: p, checked: allowed.has(p), disabled: !admin, "aria-label": `Allow ${p}` });
      return [box, h("label", { class: "check" }, box, ` ${p}`)];
    });
    const modes = t.options.masking_modes;
    const mode = select(modes.includes(t.llm.masking_mode) ? modes : [t.llm.masking_mode, ...modes], t.llm.masking_mode,
      { "aria-label": "Masking mode", disabled: !admin, "data-testid": "masking-mode" });
    const form = h("form", { class: "stack-form", "data-testid": "llm-form" },
      h("div", { class: "sub-h" }, "Providers that may receive this tenant's log text"),
      h("div", { class: "checks" }, boxes.map(([, l]) => l)),
      h("div", { class: "muted small" }, "None ticked: only the built-in offline analysis (nothing leaves this machine)."),
      h("label", { class: "q-row" }, h("span", {}, "Masking before anything is sent"), mode),
      admin ? h("div", {}, h("button", { class: "btn", type: "submit" }, "Save LLM policy")) : null);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const chosen = boxes.filter(([b]) => b.checked).map(([b]) => b.value);
        await api("/api/v1/tenant/llm-policy", { method: "PUT", body: { allowed_providers: chosen, masking_mode: mode.value } });
        toast("LLM policy saved");
        load();
      } catch (e) { toast(e.message, "error"); }
    });
    return panel("LLM policy", null,
      h("div", { class: local ? "notice" : "muted small", "data-testid": "llm-applies" },
        local
          ? ["In local mode the server's settings apply: provider ", h("code", {}, t.options.server_llm_provider),
            " (", h("code", {}, "llm_provider"), "). The policy below is stored for this tenant and applies once authentication is on."]
          : ["This server is configured with provider ", h("code", {}, t.options.server_llm_provider),
            "; it is used for this tenant only if allowed here, otherwise the offline analysis answers."]),
      form);
  }

  load();
}
