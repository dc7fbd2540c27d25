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
 * A file input plus an examples menu; a file may also be dropped on it. Returns
 * {node, file(): Promise<File|null>, input, menu}; the node fires "picked" when a file is dropped.
 * Choosing one source clears the others.
 */
export async function imagePicker(id, label, initial = "") {
  const input = el("input", { id: `${id}-file`, type: "file", accept: "image/*" });
  const names = await sampleNames();
  const menu = select(`${id}-sample`, [["", "(upload a file)"], ...names.map((n) => [n, n])], initial);
  const note = el("span", { id: `${id}-dropped`, class: "muted", "aria-live": "polite" });
  let dropped = null;
  input.addEventListener("change", () => { if (input.files.length) { menu.value = ""; dropped = null; note.textContent = ""; } });
  menu.addEventListener("change", () => { if (menu.value) { input.value = ""; dropped = null; note.textContent = ""; } });
  const node = el("div", { class: "row picker", id: `${id}-picker` },
    field(`${label}: file (or drop one here)`, input), field("or an example", menu), note);
  node.addEventListener("dragover", (e) => { e.preventDefault(); node.classList.add("over"); });
  node.addEventListener("dragleave", () => node.classList.remove("over"));
  node.addEventListener("drop", (e) => {
    e.preventDefault();
    node.classList.remove("over");
    const file = [...(e.dataTransfer?.files || [])].find((f) => f.type.startsWith("image/"));
    if (!file) return;
    dropped = file;
    input.value = "";
    menu.value = "";
    note.textContent = `dropped: ${file.name}`;
    node.dispatchEvent(new CustomEvent("picked"));
  });
  return {
    node, input, menu,
    async file() {
      if (dropped) return dropped;
      if (input.files.length) return input.files[0];
      if (menu.value) return sampleFile(menu.value);
      return null;
    },
  };
}
