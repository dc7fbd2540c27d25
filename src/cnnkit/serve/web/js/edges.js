// edges.js: the Edges tab. A photo (upload or shipped example) and a kernel; the signed response
// and the magnitude side by side, computed by cnnkit.edges on the server (POST /edges).
import { api, guarded, showError } from "./api.js";
import { imagePicker } from "./samples.js";
import { el, field, select } from "./ui.js";

const KERNELS = ["sobel", "scharr", "prewitt", "vertical", "horizontal", "laplacian"];

async function edgeViews(file, kernel) {
  const form = new FormData();
  form.append("file", file);
  form.append("kernel", kernel);
  return api("/edges/views", { form });
}

export async function init(panel) {
  const picker = await imagePicker("edges", "Photo", "camera");
  const kernel = select("edges-kernel", KERNELS, "sobel");
  const run = el("button", { type: "button", id: "edges-run", text: "Detect edges" });
  const status = el("p", { id: "edges-status", class: "muted", "aria-live": "polite" });
  const original = el("img", { id: "edges-original", alt: "the photo" });
  const signed = el("img", { id: "edges-signed", alt: "signed response" });
  const magnitude = el("img", { id: "edges-magnitude", alt: "magnitude" });
  const go = () => guarded(run, async () => {
    const file = await picker.file();
    if (!file) return showError(run, "choose a photo or an example first");
    status.textContent = "computing…";
    run.disabled = true;
    try {
      const r = await edgeViews(file, kernel.value);
      original.src = URL.createObjectURL(file);
      signed.src = r.signed;
      magnitude.src = r.magnitude;
      status.textContent = `${kernel.value}: red where the left/top side is brighter, blue where the right/bottom is; magnitude in white.`;
    } finally {
      run.disabled = false;
    }
  });
  run.addEventListener("click", go);
  kernel.addEventListener("change", go);
  picker.menu.addEventListener("change", () => picker.menu.value && go());
  picker.input.addEventListener("change", go);
  picker.node.addEventListener("picked", go);
  panel.append(
    el("h2", { text: "Edges" }),
    el("div", { class: "card" },
      picker.node,
      el("div", { class: "row" }, field("Kernel", kernel), run),
      status,
      el("div", { class: "pics" },
        el("figure", {}, original, el("figcaption", { text: "photo" })),
        el("figure", {}, signed, el("figcaption", { text: "signed response (x direction for gradient pairs)" })),
        el("figure", {}, magnitude, el("figcaption", { text: "magnitude" })))));
  go();
}
