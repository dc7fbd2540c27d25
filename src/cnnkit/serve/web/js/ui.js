// ui.js: small DOM helpers shared by the tabs (no framework).

/** el("div", {class: "x", onclick: fn}, child, "text", ...) */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** A labelled control in a column: field("Kernel", select) */
export function field(label, control) {
  return el("div", { class: "field" }, el("label", { for: control.id, text: label }), control);
}

export function select(id, options, value) {
  const s = el("select", { id });
  for (const o of options) {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    s.append(el("option", { value: v, text }));
  }
  if (value !== undefined) s.value = value;
  return s;
}

export function fmt(v, digits = 3) {
  if (!Number.isFinite(v)) return String(v);
  const r = Math.round(v * 10 ** digits) / 10 ** digits;
  return Object.is(r, -0) ? "0" : String(r);
}

/** An editable rows x cols grid of number inputs; onInput(values) on every change. */
export function inputGrid(id, values, label, onInput) {
  const rows = values.length, cols = values[0].length;
  const grid = el("div", { class: "grid", id, role: "group", "aria-label": label });
  grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
  const read = () => [...Array(rows)].map((_, r) =>
    [...Array(cols)].map((_, c) => Number(grid.children[r * cols + c].value) || 0));
  values.forEach((row, r) => row.forEach((v, c) => {
    grid.append(el("input", {
      type: "number", step: "any", value: fmt(v, 4), id: `${id}-${r}-${c}`,
      "aria-label": `${label}, row ${r + 1}, column ${c + 1}`,
      oninput: () => onInput(read()),
    }));
  }));
  grid.read = read;
  return grid;
}

/** A read-only grid; cls(r, c) gives extra classes per cell. */
export function viewGrid(values, label, cls = () => "", small = false) {
  const cols = values[0] ? values[0].length : 0;
  const grid = el("div", { class: small ? "grid small" : "grid", role: "img", "aria-label": label });
  grid.style.gridTemplateColumns = `repeat(${cols}, auto)`;
  values.forEach((row, r) => row.forEach((v, c) => {
    grid.append(el("span", { class: cls(r, c), text: fmt(v, 2) }));
  }));
  return grid;
}

/** Draw a 2-D array of numbers as a grayscale canvas (min..max -> black..white). */
export function mapCanvas(map, scale = 4, label = "") {
  const h = map.length, w = map[0].length;
  let lo = Infinity, hi = -Infinity;
  for (const row of map) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  const span = hi - lo || 1;
  const canvas = el("canvas", { width: w, height: h, role: "img", "aria-label": label });
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  canvas.style.imageRendering = "pixelated";
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  map.forEach((row, y) => row.forEach((v, x) => {
    const g = Math.round(((v - lo) / span) * 255);
    img.data.set([g, g, g, 255], (y * w + x) * 4);
  }));
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** An SVG line chart of ys (log scale if asked) into `svg`, with a title for screen readers. */
export function lineChart(svg, ys, { log = false, label = "", xLabel = "", yLabel = "" } = {}) {
  const W = 420, H = 200, L = 52, B = 28, T = 8, R = 8;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const f = (v) => (log ? Math.log10(Math.max(v, 1e-300)) : v);
  const vals = ys.map(f).filter(Number.isFinite);
  const lo = Math.min(...vals), hi = Math.max(...vals);
  const span = hi - lo || 1;
  const x = (i) => L + ((W - L - R) * i) / Math.max(ys.length - 1, 1);
  const y = (v) => T + (H - T - B) * (1 - (f(v) - lo) / span);
  const pts = ys.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const tick = (v) => (log ? `1e${Math.round(v)}` : fmt(v, 2));
  svg.innerHTML =
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="#fff" stroke="#d6dade"/>` +
    `<polyline fill="none" stroke="#1f5fbf" stroke-width="2" points="${pts}"/>` +
    `<text x="${L - 4}" y="${T + 10}" font-size="11" text-anchor="end">${tick(hi)}</text>` +
    `<text x="${L - 4}" y="${H - B}" font-size="11" text-anchor="end">${tick(lo)}</text>` +
    `<text x="${(W + L) / 2}" y="${H - 6}" font-size="11" text-anchor="middle">${xLabel}</text>` +
    `<text x="12" y="${(H - B) / 2}" font-size="11" transform="rotate(-90 12 ${(H - B) / 2})" text-anchor="middle">${yLabel}</text>`;
}

/** Load a File/Blob into an ImageBitmap-backed <img> URL. */
export function blobUrl(blob) {
  return URL.createObjectURL(blob);
}

export function debounce(fn, ms = 150) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}
