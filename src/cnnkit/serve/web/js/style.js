// style.js: the Style tab. Content and style images (files or shipped examples), alpha, beta, size,
// iterations; a job on the server (POST /style/jobs), polled for progress and the improving image,
// cancellable, with the result to download.
import { api, guarded, showError } from "./api.js";
import { imagePicker } from "./samples.js";
import { el, field } from "./ui.js";

const number = (id, value, min, max, step = "any") =>
  el("input", { id, type: "number", value: String(value), min: String(min), max: String(max), step });

export async function init(panel) {
  const content = await imagePicker("style-content", "Content", "chelsea");
  const style = await imagePicker("style-style", "Style", "gravel");
  const alpha = number("style-alpha", 1, 0, 1e6);
  const beta = number("style-beta", 10, 0, 1e9);
  const size = number("style-size", 128, 16, 512, "1");
  const iterations = number("style-iterations", 40, 1, 2000, "1");
  const start = el("button", { type: "button", id: "style-start", text: "Start" });
  const cancel = el("button", { type: "button", class: "secondary", id: "style-cancel", text: "Cancel", disabled: true });
  const bar = el("progress", { id: "style-progress", max: "1", value: "0", "aria-label": "style transfer progress" });
  const status = el("p", { id: "style-status", "aria-live": "polite" });
  const image = el("img", { id: "style-image", class: "result", alt: "the image being painted" });
  const download = el("a", { id: "style-download", hidden: true, download: "cnnkit-style.png", text: "Download the result (PNG)" });
  let job = null;

  // a problem about one option ("size must be ...", "iterations must be ...") goes beside it
  const options = { alpha, beta, size, iterations };
  const culprit = (err) => options[String(err.message).split(" ")[0]] || start;
  start.addEventListener("click", async () => {
    for (const c of [start, ...Object.values(options)]) showError(c, null);
    try {
      await run();
    } catch (err) {
      showError(culprit(err), err);
    }
  });
  const run = async () => {
    const [c, s] = await Promise.all([content.file(), style.file()]);
    if (!c || !s) throw new Error("choose a content and a style image (files or examples)");
    const form = new FormData();
    form.append("content", c);
    form.append("style", s);
    for (const [k, v] of [["alpha", alpha], ["beta", beta], ["size", size], ["iterations", iterations]]) form.append(k, v.value);
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
    let shown = -1;
    try {
      for (;;) {
        const st = await api(`/style/jobs/${id}`);
        bar.max = st.total;
        bar.value = st.iteration;
        status.textContent = `${st.state}: iteration ${st.iteration} of ${st.total}` +
          (st.seconds ? `, ${st.seconds.toFixed(1)} s` : "") + (st.backbone ? ` (${st.backbone})` : "");
        status.dataset.state = st.state;
        const finished = ["done", "cancelled", "failed"].includes(st.state);
        if (st.preview_iteration !== shown && st.preview_iteration > 0 && !finished) {
          shown = st.preview_iteration;
          const blob = await api(`/style/jobs/${id}/preview`, { as: "blob" });
          image.src = URL.createObjectURL(blob);
        }
        if (finished) {
          if (st.state === "failed") showError(start, st.error || "the job failed");
          if (st.has_result) {
            const blob = await api(`/style/jobs/${id}/result`, { as: "blob" });
            const url = URL.createObjectURL(blob);
            image.src = url;
            download.href = url;
            download.hidden = false;
          }
          return;
        }
        await new Promise((ok) => setTimeout(ok, 400));
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
        el("div", { class: "row" }, field("alpha (content weight)", alpha), field("beta (style weight)", beta)),
        el("div", { class: "row" }, field("Size, px (longest side)", size), field("Iterations", iterations)),
        el("div", { class: "row" }, start, cancel), bar, status,
        el("p", { class: "muted", text: "J(G) = alpha J_content(C, G) + beta J_style(S, G), minimised over the pixels of G." })),
      el("div", { class: "card" }, el("figure", {}, image, el("figcaption", { text: "the generated image G, improving" })), download)));
}
