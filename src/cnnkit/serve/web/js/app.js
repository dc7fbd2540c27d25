// app.js: tabs (arrow keys move between them), sign-in, and lazy start of each tab's module.
import { api, setCsrfToken, showError, ApiError } from "./api.js";

const started = new Set();

async function startTab(panel) {
  const name = panel.dataset.module;
  if (started.has(name)) return;
  started.add(name);
  const module = await import(`./${name}.js`);
  await module.init(panel);
}

function selectTab(tab, focus = false) {
  for (const t of document.querySelectorAll('[role="tab"]')) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    document.getElementById(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  history.replaceState(null, "", `#${tab.id.slice(4)}`);
  startTab(document.getElementById(tab.getAttribute("aria-controls")));
}

function setupTabs() {
  const tabs = [...document.querySelectorAll('[role="tab"]')];
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (e) => {
      const moves = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: tabs.length - 1 - i };
      if (e.key in moves) {
        e.preventDefault();
        selectTab(tabs[(i + moves[e.key] + tabs.length) % tabs.length], true);
      }
    });
  });
  const wanted = document.getElementById(`tab-${location.hash.slice(1)}`);
  selectTab(wanted || tabs[0]);
}

async function whoami() {
  // GET /session: 401 without a session cookie; else who we are and the CSRF token for writes.
  const session = await api("/session");
  setCsrfToken(session.csrf);
  return session;
}

async function signIn() {
  const box = document.getElementById("signin");
  const form = document.getElementById("signin-form");
  const input = document.getElementById("signin-key");
  try {
    const session = await whoami();
    document.getElementById("whoami").textContent = describe(session);
    return true;
  } catch (err) {
    if (!(err instanceof ApiError) || (err.status !== 401 && err.status !== 403)) throw err;
  }
  box.hidden = false;
  document.querySelector("main").classList.add("locked");
  return new Promise((resolve) => {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        // the key is exchanged for the HttpOnly session cookie; the page does not keep it
        const session = await api("/session", { json: { key: input.value.trim() } });
        setCsrfToken(session.csrf);
        input.value = "";
        document.getElementById("whoami").textContent = describe(session);
        box.hidden = true;
        document.querySelector("main").classList.remove("locked");
        showError(input, null);
        resolve(true);
      } catch (err) {
        showError(input, err);
      }
    });
  });
}

function describe(session) {
  if (!session) return "";
  return `${session.role} · gallery ${session.gallery}`;
}

async function main() {
  const out = document.getElementById("signout");
  out.addEventListener("click", async () => {
    await api("/session", { method: "DELETE", as: "none" }).catch(() => null);
    location.reload();
  });
  try {
    await signIn();
    out.hidden = false;
  } catch (err) {
    document.getElementById("whoami").textContent = err.message;
  }
  setupTabs();
}

main();
