// The client-side router: /app/<slug>?<state> → pages/<module>.js. The URL holds all page state.
import { h, clear } from "./lib/dom.js";
import { api, logout } from "./lib/api.js";
import { PAGES } from "./pages/registry.js";

const nav = document.getElementById("nav-items");
const root = document.getElementById("page");
let cleanup = null;
let current = null;

function pageFor(path) {
  const slug = path.replace(/^\/app\/?/, "").split("/")[0] || "discover";
  return PAGES.find((p) => p.slug === slug) || null;
}

function renderNav(active) {
  clear(nav);
  for (const p of PAGES) {
    if (p.section) { nav.appendChild(h("div", { class: "nav-sec" }, p.section)); continue; }
    const a = h("a", {
      class: ["nav-item", active && active.slug === p.slug ? "on" : ""],
      href: `/app/${p.slug}`, "data-page": p.slug, title: p.key ? `${p.title} (g ${p.key})` : p.title,
    }, h("span", { class: "ico" }, p.icon), h("span", { class: "lbl" }, p.title));
    a.addEventListener("click", (e) => {
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
      e.preventDefault();
      navigate(`/app/${p.slug}`);
    });
    nav.appendChild(a);
  }
}

export function navigate(path, params) {
  const url = new URL(path, location.origin);
  if (params) for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  history.pushState({}, "", url.pathname + url.search);
  route();
}

function setParams(params, replace = true) {
  const url = new URL(location.href);
  url.search = "";
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  if (url.href === location.href) return;
  (replace ? history.replaceState : history.pushState).call(history, {}, "", url.pathname + url.search);
}

async function route() {
  const page = pageFor(location.pathname);
  if (cleanup) { try { cleanup(); } catch (e) { console.warn(e); } cleanup = null; }
  renderNav(page);
  clear(root);
  if (!page) {
    root.appendChild(h("div", { class: "empty big" }, h("h2", {}, "Page not found"), h("a", { href: "/app/discover" }, "Go to Discover")));
    return;
  }
  document.title = `${page.title} · LogLoupe`;
  current = page;
  const mod = await import(page.module.replace("./", "./pages/"));
  if (current !== page) return;
  const ctx = { page, params: new URLSearchParams(location.search), navigate, setParams };
  const c = await mod.mount(root, ctx);
  if (current === page) cleanup = typeof c === "function" ? c : null;
  else if (typeof c === "function") c();
}

window.addEventListener("popstate", route);

// Theme: dark by default, remembered.
const theme = localStorage.getItem("logloupe.theme") || "dark";
document.documentElement.dataset.theme = theme;
function toggleTheme() {
  const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
  document.documentElement.dataset.theme = next;
  localStorage.setItem("logloupe.theme", next);
  route();
}
document.getElementById("theme-toggle").addEventListener("click", toggleTheme);

// Keyboard: "/" focuses the query, "g d|l|b|p" goes to a page, "t" toggles the theme.
let g = false;
document.addEventListener("keydown", (e) => {
  const t = e.target;
  if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
  if (e.metaKey || e.ctrlKey || e.altKey) return;
  if (e.key === "/") {
    const q = document.querySelector(".q-input");
    if (q) { e.preventDefault(); q.focus(); q.select(); }
  } else if (g) {
    g = false;
    const p = PAGES.find((x) => x.key === e.key);
    if (p) navigate(`/app/${p.slug}`);
  } else if (e.key === "g") {
    g = true;
    setTimeout(() => { g = false; }, 1200);
  } else if (e.key === "t") toggleTheme();
});

// The user menu under the brand: who is signed in, to which organisation, with which role; Log out.
// Hidden in single-user local mode (no accounts there).
async function userMenu() {
  const slot = document.getElementById("user-slot");
  let me;
  try { me = await api("/api/v1/auth/me"); } catch { return; }
  if (!me.auth_enabled) return;
  const org = (me.tenants || []).find((t) => t.tenant === me.tenant);
  const orgName = org ? org.name : me.tenant;
  const pop = h("div", { class: "popover um-pop", hidden: true, role: "menu", "data-testid": "user-pop" },
    h("dl", {},
      h("dt", {}, "Signed in as"), h("dd", { "data-testid": "um-user" }, me.user),
      h("dt", {}, "Organisation"), h("dd", { "data-testid": "um-tenant" }, orgName, " ", h("span", { class: "muted small" }, `(${me.tenant})`)),
      h("dt", {}, "Role"), h("dd", { "data-testid": "um-role" }, me.role)),
    h("a", { class: "btn btn-sm", href: "/app/settings", role: "menuitem",
      onclick: (e) => { e.preventDefault(); pop.hidden = true; navigate("/app/settings"); } }, "Settings"),
    h("button", { class: "btn btn-sm", type: "button", role: "menuitem", "data-testid": "logout", onclick: () => logout() }, "Log out"));
  const btn = h("button", { class: "um-btn", type: "button", "aria-haspopup": "menu", "data-testid": "user-menu", title: `${me.user} · ${orgName} · ${me.role}` },
    h("span", { class: "avatar" }, (me.user || "?").replace(/^key:/, "").slice(0, 1)),
    h("span", { class: "um-who" }, h("b", {}, me.user), h("span", { class: "muted small" }, `${orgName} · ${me.role}`)));
  btn.addEventListener("click", (e) => { e.stopPropagation(); pop.hidden = !pop.hidden; });
  document.addEventListener("click", (e) => { if (!pop.contains(e.target)) pop.hidden = true; });
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") pop.hidden = true; });
  clear(slot).append(h("div", { class: "user-menu" }, btn, pop));
}

route();
userMenu();
