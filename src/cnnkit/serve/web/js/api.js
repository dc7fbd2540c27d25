// api.js: every call to /api/v1 goes through here. The page signs in with a cookie session (the
// printed one-time URL, or an API key typed into the sign-in box and exchanged by POST /session:
// the key is never kept by the page); api() adds the session's CSRF token on writes, and turns an
// RFC 9457 problem into an ApiError whose message is the problem's `detail`; showError() puts
// that message next to the control that caused it.

const BASE = "/api/v1";
let csrfToken = null;

export class ApiError extends Error {
  constructor(status, detail, problem) {
    super(detail);
    this.status = status;
    this.problem = problem || {};
  }
}

/** The CSRF token of the cookie session (from GET or POST /session), sent on every write. */
export function setCsrfToken(token) {
  csrfToken = token || null;
}

async function problemOf(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      const body = await response.json();
      const detail = body.detail;
      if (typeof detail === "string") return new ApiError(response.status, detail, body);
      if (Array.isArray(detail) && detail.length) {
        // FastAPI's validation errors: [{loc, msg}]
        const d = detail[0];
        const where = Array.isArray(d.loc) ? d.loc.filter((x) => x !== "body").join(".") : "";
        return new ApiError(response.status, `${where ? where + ": " : ""}${d.msg}`, body);
      }
      return new ApiError(response.status, body.title || response.statusText, body);
    } catch (_) {
      /* fall through */
    }
  }
  return new ApiError(response.status, `${response.status} ${response.statusText}`);
}

/**
 * Call the API. options: {method, json, form (FormData), as: "json"|"blob"|"none", signal}.
 * Resolves to the parsed body; rejects with ApiError (detail text) on a non-2xx answer.
 */
export async function api(path, options = {}) {
  const method = options.method || (options.json || options.form ? "POST" : "GET");
  const headers = {};
  if (method !== "GET" && method !== "HEAD" && csrfToken) headers["X-CSRF-Token"] = csrfToken;
  let body;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.json);
  } else if (options.form) {
    body = options.form;
  }
  let response;
  try {
    response = await fetch(BASE + path, {
      method, headers, body, signal: options.signal, credentials: "same-origin",
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "the server cannot be reached (is cnnkit serve running?)");
  }
  if (!response.ok) throw await problemOf(response);
  const as = options.as || "json";
  if (as === "blob") return response.blob();
  if (as === "none" || response.status === 204) return null;
  return response.json();
}

/** An object URL for an image the API returns (so images also carry the key). */
export async function imageUrl(path, options = {}) {
  const blob = await api(path, { ...options, as: "blob" });
  return URL.createObjectURL(blob);
}

/** Show `err` (ApiError or text) next to `control`; clear it with showError(control, null). */
export function showError(control, err) {
  const slot = errorSlot(control);
  if (!err) {
    slot.textContent = "";
    slot.hidden = true;
    control.removeAttribute("aria-invalid");
    return;
  }
  slot.textContent = typeof err === "string" ? err : err.message;
  slot.hidden = false;
  control.setAttribute("aria-invalid", "true");
}

function errorSlot(control) {
  const id = (control.id || "control") + "-error";
  let slot = document.getElementById(id);
  if (!slot) {
    slot = document.createElement("p");
    slot.id = id;
    slot.className = "error";
    slot.setAttribute("role", "alert");
    slot.hidden = true;
    control.insertAdjacentElement("afterend", slot);
    const described = control.getAttribute("aria-describedby");
    control.setAttribute("aria-describedby", described ? `${described} ${id}` : id);
  }
  return slot;
}

/** Run `work()`, showing its error next to `control` (and clearing an old one first). */
export async function guarded(control, work) {
  showError(control, null);
  try {
    return await work();
  } catch (err) {
    if (err.name === "AbortError") return undefined;
    showError(control, err);
    return undefined;
  }
}
