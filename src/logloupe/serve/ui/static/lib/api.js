// The JSON API client: bearer token from localStorage, 401 → /login, errors with their position.

export class ApiError extends Error {
  constructor(status, body) {
    const err = (body && body.error) || {};
    super(err.message || `HTTP ${status}`);
    this.status = status;
    this.code = err.code || "http_error";
    this.position = typeof err.position === "number" ? err.position : null;
  }
}

export function authHeaders() {
  const token = localStorage.getItem("logloupe.token");
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export function toLogin() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

/** Revoke this session on the server (and its refresh token), forget the tokens, go to /login. */
export async function logout() {
  const refresh = localStorage.getItem("logloupe.refresh");
  try {
    await fetch("/api/v1/auth/logout", {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify(refresh ? { refresh_token: refresh } : {}),
    });
  } catch { /* signed out locally all the same */ }
  localStorage.removeItem("logloupe.token");
  localStorage.removeItem("logloupe.refresh");
  location.assign("/login");
}

/** The API URL for path and the set params (undefined, null and "" left out). */
function apiUrl(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url;
}

/** 401 → /login; another failure → ApiError with the server's error body. */
async function failIfBad(res) {
  if (res.status === 401) { toLogin(); throw new ApiError(401, null); }
  if (res.ok) return;
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  throw new ApiError(res.status, data);
}

export async function api(path, { params, method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(apiUrl(path, params), { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  await failIfBad(res);
  try { return await res.json(); } catch { return null; }
}

/**
 * Server-sent events over fetch (so the bearer header goes along; EventSource cannot send one).
 * onEvent(name, data) per frame. Returns {close()}.
 */
/** Read a server-sent-events body (fetch Response) to its end; onEvent(name, data) per frame. */
export async function readEvents(res, onEvent) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let idx;
    while ((idx = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, idx);
      buf = buf.slice(idx + 2);
      let name = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(name, JSON.parse(data.join("\n")));
    }
  }
}

export function streamEvents(path, params, onEvent, onState) {
  const ctrl = new AbortController();
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v) url.searchParams.set(k, v);
  let closed = false;
  (async () => {
    let retry = 1000;
    while (!closed) {
      try {
        const res = await fetch(url, { headers: { Accept: "text/event-stream", ...authHeaders() }, signal: ctrl.signal });
        if (res.status === 401) { toLogin(); return; }
        if (!res.ok) {
          let data = null;
          try { data = await res.json(); } catch { /* not JSON */ }
          onState("error", new ApiError(res.status, data));
          return;
        }
        onState("open");
        retry = 1000;
        await readEvents(res, onEvent);
      } catch (e) {
        if (closed) return;
      }
      if (closed) return;
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, retry));
      retry = Math.min(retry * 2, 15000);
    }
  })();
  return { close() { closed = true; ctrl.abort(); } };
}

/**
 * Download an API answer as a file: fetched, so the bearer header goes along (a plain link cannot
 * carry it), then saved under the server's Content-Disposition name. Resolves to {name, exported, total}.
 */
export async function download(path, params) {
  const res = await fetch(apiUrl(path, params), { headers: authHeaders() });
  await failIfBad(res);
  const blob = await res.blob();
  const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || "logloupe-export";
  const href = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = href;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
  return { name, exported: Number(res.headers.get("X-LogLoupe-Exported") || 0), total: Number(res.headers.get("X-LogLoupe-Total") || 0) };
}
