// style.js: the Style tab. Content and style images (files or shipped examples) or one of the 26
// built-in styles; the method (fast only; fast, then refined by Gatys from it (default); Gatys from
// the content); alpha, beta, size, iterations; a job on the server (POST /style/jobs), polled: the
// fast result is shown first, then the optimisation's progress and improving image replace it;
// cancellable, with the result to download.
import { api, guarded, showError } from "./api.js";
import { imagePicker } from "./samples.js";
import { el, field, select } from "./ui.js";

const METHODS = [
  ["refine", "Fast, then refine (Gatys)"],
  ["fast", "Fast only"],
  ["gatys", "Gatys from the content"],
];

const number = (id, value, min, max, step = "any") =>
  el("input", { id, type: "number", value: String(value), min: String(min), max: String(max), step });

export async function init(panel) {
  const content = await imagePicker("style-content", "Content", "chelsea");
  const style = await imagePicker("style-style", "Style", "gravel");
  const alpha = number("style-alpha", 1, 0, 1e6);
  const beta = number("style-beta", 10, 0, 1e9);
  const size = number("style-size", 128, 16, 512, "1");
  const iterations = number("style-iterations", 40, 1, 2000, "1");
  const method = select("style-method", METHODS, "refine");
  const ids = await api("/style/jobs/options").then((o) => o.builtin_styles).catch(() => []);
  const builtin = select("style-builtin",
    [["", "(none: the style image above)"], ...ids.map((i) => [String(i), `built-in style ${i}`])], "");
  // a built-in style has no image for the optimisation: choosing one selects the fast method
  // the optimisation's options mean nothing to the fast method
  const gatysOnly = () => { for (const c of [alpha, beta, iterations]) c.disabled = method.value === "fast"; };
  method.addEventListener("change", gatysOnly);
  builtin.addEventListener("change", () => { if (builtin.value) { method.value = "fast"; gatysOnly(); } });
  const start = el("button", { type: "button", id: "style-start", text: "Start" });
  const cancel = el("button", { type: "button", class: "secondary", id: "style-cancel", text: "Cancel", disabled: true });
  const bar = el("progress", { id: "style-progress", max: "1", value: "0", "aria-label": "style transfer progress" });
  const status = el("p", { id: "style-status", "aria-live": "polite" });
  const image = el("img", { id: "style-image", class: "result", alt: "the image being painted" });
  const caption = el("figcaption", { id: "style-caption", text: "the generated image G" });
  const show = (blob, stage, text) => {
    image.src = URL.createObjectURL(blob);
    image.dataset.stage = stage; // fast, preview or result: what the image is now
    caption.textContent = text;
  };
  const download = el("a", { id: "style-download", hidden: true, download: "cnnkit-style.png", text: "Download the result (PNG)" });
  let job = null;

  // a problem about one option ("size must be ...", "iterations must be ...") goes beside it
  const options = { alpha, beta, size, iterations, method, builtin, style: style.menu };
  const culprit = (err) => {
    const word = String(err.message).split(/[ :]/)[0];
    if (word === "style") return builtin.value ? builtin : style.menu;
    return options[word] || start;
  };
  start.addEventListener("click", async () => {
    for (const c of [start, ...Object.values(options)]) showError(c, null);
    try {
      await run();
    } catch (err) {
      showError(culprit(err), err);
    }
  });
  const run = async () => {
    const [c, s] = await Promise.all([content.file(), builtin.value ? null : style.file()]);
    if (!c) throw new Error("choose a content image (a file or an example)");
    if (!s && !builtin.value) throw new Error("style: choose a style image or a built-in style");
    const form = new FormData();
    form.append("content", c);
    if (builtin.value) form.append("style_id", builtin.value);
    else form.append("style", s);
    for (const [k, v] of [["method", method], ["alpha", alpha], ["beta", beta], ["size", size], ["iterations", iterations]]) form.append(k, v.value);
    download.hidden = true;
    const created = await api("/style/jobs", { form });
    job = created.id;
    start.disabled = true;
    cancel.disabled = false;
    await follow(created.id);
  };
  cancel.addEventListener("click", () => guarded(cancel, async () => {
    if (job) await api(`/style/jobs/${job}/cancel`, { method: "POST" });
  }));

  async function follow(id) {
    let shown = -1, fastShown = false, wait = 100;
    try {
      for (;;) {
        const st = await api(`/style/jobs/${id}`);
        bar.max = st.total;
        bar.value = st.iteration;
        const fastNote = st.has_fast ? `fast result in ${st.fast_seconds.toFixed(2)} s; ` : "";
        status.textContent = st.method === "fast"
          ? `${st.state}: ${st.has_fast ? `fast result in ${st.fast_seconds.toFixed(2)} s` : "fast method"}`
          : `${st.state}: ${fastNote}iteration ${st.iteration} of ${st.total}` +
            (st.seconds ? `, ${st.seconds.toFixed(1)} s` : "") + (st.backbone ? ` (${st.backbone})` : "") +
            (st.note ? ` (${st.note})` : "");
        status.dataset.state = st.state;
        const finished = ["done", "cancelled", "failed"].includes(st.state);
        if (st.has_fast && !fastShown && !finished && st.preview_iteration === 0) {
          fastShown = true;
          const blob = await api(`/style/jobs/${id}/fast`, { as: "blob" });
          show(blob, "fast", `the fast result (${st.fast_seconds.toFixed(2)} s), one pass; the optimisation continues from it`);
        }
        if (st.preview_iteration !== shown && st.preview_iteration > 0 && !finished) {
          shown = st.preview_iteration;
          const blob = await api(`/style/jobs/${id}/preview`, { as: "blob" });
          show(blob, "preview", `the generated image G at iteration ${st.preview_iteration}, improving`);
        }
        if (finished) {
          if (st.state === "failed") showError(start, st.error || "the job failed");
          if (st.has_result) {
            const blob = await api(`/style/jobs/${id}/result`, { as: "blob" });
            show(blob, "result", st.method === "fast" ? "the fast result" : `the result G (${st.state})`);
            download.href = image.src;
            download.hidden = false;
          }
          return;
        }
        // soon at first (the fast result takes a fraction of a second), then every 0.4 s
        await new Promise((ok) => setTimeout(ok, wait));
        wait = Math.min(400, wait * 2);
      }
    } finally {
      start.disabled = false;
      cancel.disabled = true;
    }
  }

  panel.append(
    el("h2", { text: "Style" }),
    el("div", { class: "cols" },
      el("div", { class: "card" }, content.node, style.node,
        el("div", { class: "row" }, field("or a built-in style (fast method)", builtin), field("Method", method)),
        el("div", { class: "row" }, field("alpha (content weight)", alpha), field("beta (style weight)", beta)),
        el("div", { class: "row" }, field("Size, px (longest side)", size), field("Iterations", iterations)),
        el("div", { class: "row" }, start, cancel), bar, status,
        el("p", { class: "muted", text: "Fast: G = T(C; P(S)), one pass of a trained network. Gatys: J(G) = alpha J_content(C, G) + beta J_style(S, G), minimised over the pixels of G." })),
      el("div", { class: "card" }, el("figure", {}, image, caption), download)));
}
