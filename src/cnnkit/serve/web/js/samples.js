// samples.js: the example images shipped inside installed packages (GET /samples), and a picker
// that gives a File from either an upload or a chosen example.
import { api } from "./api.js";
import { el, field, select } from "./ui.js";

let cache = null;

export async function sampleNames() {
  if (!cache) cache = api("/samples").then((r) => r.items.map((s) => s.name)).catch(() => []);
  return cache;
}

export async function sampleFile(name) {
  const blob = await api(`/samples/${encodeURIComponent(name)}`, { as: "blob" });
  return new File([blob], `${name}.${blob.type === "image/jpeg" ? "jpg" : "png"}`, { type: blob.type });
}

/**
 * A file input plus an examples menu. Returns {node, file(): Promise<File|null>, input, menu}.
 * Choosing a file clears the menu, and the reverse.
 */
export async function imagePicker(id, label, initial = "") {
  const input = el("input", { id: `${id}-file`, type: "file", accept: "image/*" });
  const names = await sampleNames();
  const menu = select(`${id}-sample`, [["", "(upload a file)"], ...names.map((n) => [n, n])], initial);
  input.addEventListener("change", () => { if (input.files.length) menu.value = ""; });
  menu.addEventListener("change", () => { if (menu.value) input.value = ""; });
  const node = el("div", { class: "row" }, field(`${label}: file`, input), field("or an example", menu));
  return {
    node, input, menu,
    async file() {
      if (input.files.length) return input.files[0];
      if (menu.value) return sampleFile(menu.value);
      return null;
    },
  };
}
