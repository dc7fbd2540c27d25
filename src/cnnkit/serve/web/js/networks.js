// networks.js: the Networks tab. A classic network's layer table (GET /models/{name}/summary), the
// parameters-vs-cost chart of all of them, and a digit drawn on a canvas classified by LeNet-5
// (POST /digits/classify) with its probabilities and the feature maps of each conv layer.
import { api, guarded, showError } from "./api.js";
import { el, field, fmt, mapCanvas, select } from "./ui.js";

const MODELS = [["lenet5", "LeNet-5"], ["alexnet", "AlexNet"], ["vgg16", "VGG-16"], ["vgg19", "VGG-19"],
  ["resnet18", "ResNet-18"], ["resnet34", "ResNet-34"], ["resnet50", "ResNet-50"],
  ["resnet101", "ResNet-101"], ["resnet152", "ResNet-152"]];
const nf = new Intl.NumberFormat("en-US");
const summaries = new Map();

async function summary(name) {
  if (!summaries.has(name)) summaries.set(name, api(`/models/${name}/summary`));
  try {
    return await summaries.get(name);
  } catch (err) {
    summaries.delete(name);
    throw err;
  }
}

const rowsOf = (s) => s.rows || s.layers || [];
const totalParams = (s) => s.total_params ?? s.params ?? rowsOf(s).reduce((a, r) => a + r.params, 0);
const totalMacs = (s) => s.total_macs ?? s.macs ?? rowsOf(s).reduce((a, r) => a + r.macs, 0);
const shapeText = (o) => (Array.isArray(o) ? o.join(" × ") : String(o));

export async function init(panel) {
  const model = select("net-model", MODELS, "vgg16");
  const tableSlot = el("div", { class: "table-wrap", id: "net-table" });
  const totals = el("p", { id: "net-totals", "aria-live": "polite" });
  const chart = el("div", { id: "net-chart" });
  const show = () => guarded(model, async () => {
    totals.textContent = "loading…";
    const s = await summary(model.value);
    const body = rowsOf(s).map((r) => el("tr", {},
      el("td", { text: r.name }), el("td", { text: r.kind }), el("td", { text: shapeText(r.output) }),
      el("td", { text: nf.format(r.params) }), el("td", { text: nf.format(r.macs) })));
    tableSlot.replaceChildren(el("table", {},
      el("caption", { class: "muted", text: `${model.selectedOptions[0].text}, input ${shapeText(s.input_size || "")}` }),
      el("thead", {}, el("tr", {}, ...["layer", "kind", "output", "parameters", "multiply-adds"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, ...body),
      el("tfoot", {}, el("tr", {}, el("td", { text: "total" }), el("td"), el("td"),
        el("td", { id: "net-total-params", text: nf.format(totalParams(s)) }),
        el("td", { text: nf.format(totalMacs(s)) })))));
    totals.textContent = `${model.selectedOptions[0].text}: ${nf.format(totalParams(s))} parameters, ` +
      `${nf.format(totalMacs(s))} multiply-adds per image`;
    drawChart(chart, model.value);
  });
  model.addEventListener("change", show);
  panel.append(
    el("h2", { text: "Networks" }),
    el("div", { class: "cols" },
      el("div", { class: "card" }, el("div", { class: "row" }, field("Network", model)), totals, tableSlot),
      el("div", { class: "card" }, el("h3", { text: "Parameters vs cost" }), chart)),
    digitsCard());
  await show();
}

async function drawChart(slot, current) {
  const points = [];
  for (const [name, label] of MODELS) {
    try {
      const s = await summary(name);
      points.push({ name, label, p: totalParams(s), m: totalMacs(s) });
    } catch (_) { /* a model the server cannot summarise: left out */ }
  }
  const W = 460, H = 300, L = 56, B = 40, T = 12, R = 16;
  const lx = points.map((q) => Math.log10(q.p)), ly = points.map((q) => Math.log10(q.m));
  const [x0, x1] = [Math.floor(Math.min(...lx)), Math.ceil(Math.max(...lx))];
  const [y0, y1] = [Math.floor(Math.min(...ly)), Math.ceil(Math.max(...ly))];
  const X = (v) => L + ((W - L - R) * (Math.log10(v) - x0)) / (x1 - x0 || 1);
  const Y = (v) => T + (H - T - B) * (1 - (Math.log10(v) - y0) / (y1 - y0 || 1));
  let svg = `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="parameters against multiply-adds, log scales">` +
    `<rect x="${L}" y="${T}" width="${W - L - R}" height="${H - T - B}" fill="#fff" stroke="#d6dade"/>`;
  for (let e = x0; e <= x1; e++) svg += `<text x="${X(10 ** e)}" y="${H - B + 14}" font-size="11" text-anchor="middle">1e${e}</text>`;
  for (let e = y0; e <= y1; e++) svg += `<text x="${L - 4}" y="${Y(10 ** e) + 4}" font-size="11" text-anchor="end">1e${e}</text>`;
  svg += `<text x="${(W + L) / 2}" y="${H - 6}" font-size="12" text-anchor="middle">parameters</text>`;
  svg += `<text x="12" y="${(H - B) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 12 ${(H - B) / 2})">multiply-adds per image</text>`;
  // labels: beside each point, on the first side (right, left, then shifted up or down) where
  // they overlap no label placed before
  const placed = [];
  const free = (b) => placed.every((o) => b.x1 < o.x0 || b.x0 > o.x1 || b.y1 < o.y0 || b.y0 > o.y1);
  for (const q of points) {
    const on = q.name === current;
    const cx = X(q.p), cy = Y(q.m), w = q.label.length * 6.3;
    let spot = null;
    for (const dy of [0, -13, 13, -26, 26]) {
      for (const side of [1, -1]) {
        const x0 = side > 0 ? cx + 7 : cx - 7 - w;
        const box = { x0, x1: x0 + w, y0: cy + dy - 9, y1: cy + dy + 3 };
        if (!spot && free(box) && box.x0 >= 0 && box.x1 <= W) spot = { box, side, dy };
      }
    }
    spot = spot || { box: { x0: cx + 7, x1: cx + 7 + w, y0: cy - 9, y1: cy + 3 }, side: 1, dy: 0 };
    placed.push(spot.box);
    svg += `<circle cx="${cx}" cy="${cy}" r="${on ? 6 : 4}" fill="${on ? "#b3261e" : "#1f5fbf"}"><title>${q.label}: ${nf.format(q.p)} parameters, ${nf.format(q.m)} multiply-adds</title></circle>` +
      `<text x="${spot.box.x0}" y="${cy + spot.dy + 4}" font-size="11"${on ? ' font-weight="700"' : ""}>${q.label}</text>`;
  }
  slot.innerHTML = svg + "</svg>";
}

/** n values as rows of 12 (the last row padded with the smallest value), to draw as a map. */
function rowsOf12(values) {
  const low = Math.min(...values);
  const rows = [];
  for (let i = 0; i < values.length; i += 12) {
    const row = values.slice(i, i + 12);
    while (row.length < 12) row.push(low);
    rows.push(row);
  }
  return rows;
}

function digitsCard() {
  const canvas = el("canvas", { id: "digit-canvas", width: 280, height: 280, role: "img",
    "aria-label": "drawing area: draw a digit with the mouse, a finger or a pen" });
  const ctx = canvas.getContext("2d");
  const clear = () => { ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, 280, 280); };
  clear();
  const classify = el("button", { type: "button", id: "digit-classify", text: "Classify" });
  const wipe = el("button", { type: "button", class: "secondary", id: "digit-clear", text: "Clear" });
  const example = select("digit-example", [...Array(10)].map((_, d) => [String(d), String(d)]), "3");
  const exampleBtn = el("button", { type: "button", class: "secondary", id: "digit-example-draw", text: "Draw an example" });
  const status = el("p", { id: "digit-status", class: "muted", "aria-live": "polite" });
  const prediction = el("p", { class: "prediction", id: "digit-prediction", "aria-live": "polite" });
  const bars = el("div", { class: "bars", id: "digit-probs" });
  const maps = el("div", { id: "digit-maps" });
  let drawing = false, last = null;
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * 280) / r.width, ((e.clientY - r.top) * 280) / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => { drawing = true; last = pos(e); canvas.setPointerCapture?.(e.pointerId); stroke(e); });
  canvas.addEventListener("pointermove", (e) => drawing && stroke(e));
  const end = () => { if (drawing) { drawing = false; run(); } };
  canvas.addEventListener("pointerup", end);
  canvas.addEventListener("pointerleave", end);
  function stroke(e) {
    const p = pos(e);
    ctx.strokeStyle = "#000"; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
  }
  const run = () => guarded(classify, async () => {
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("file", blob, "digit.png");
    status.textContent = "classifying (the first time, LeNet-5 is trained on the digits: a few seconds)…";
    const r = await api("/digits/classify", { form });
    status.textContent = r.trained_now ? "LeNet-5 was trained just now and cached." : "";
    prediction.textContent = `LeNet-5 says: ${r.digit}`;
    bars.replaceChildren(...r.probabilities.flatMap((p, d) => [
      el("span", { class: d === r.digit ? "top" : "", text: String(d) }),
      (() => { const b = el("div", { class: "bar", role: "img", "aria-label": `${d}: ${fmt(p * 100, 1)}%` }); b.style.width = `${Math.max(p * 100, 0.5)}%`; return b; })(),
      el("span", { class: d === r.digit ? "top" : "", text: `${fmt(p * 100, 1)}%` })]));
    maps.replaceChildren(
      el("h3", { text: "What the network sees (8×8, as the digits were made)" }),
      mapCanvas(r.digit8, 8, "the drawing as an 8x8 digit"),
      ...Object.entries(r.feature_maps).map(([name, m]) => el("div", {},
        el("h3", { text: `${name}: ${m.length} feature map(s) of ${m[0].length}×${m[0][0].length}` }),
        el("div", { class: "maps" }, ...(m[0].length === 1
          ? [mapCanvas(rowsOf12(m.map((c) => c[0][0])), 8, `${name}: ${m.length} activations, 12 a row`)]
          : m.map((c, k) => mapCanvas(c, m[0].length > 12 ? 2 : 5, `${name} map ${k + 1}`)))))));
  });
  classify.addEventListener("click", run);
  wipe.addEventListener("click", () => { clear(); prediction.textContent = ""; bars.replaceChildren(); maps.replaceChildren(); });
  exampleBtn.addEventListener("click", () => guarded(exampleBtn, async () => {
    const r = await api(`/digits/example?digit=${example.value}`);
    clear();
    r.image.forEach((row, y) => row.forEach((v, x) => {
      const g = Math.round(255 * (1 - v));
      ctx.fillStyle = `rgb(${g},${g},${g})`;
      ctx.fillRect(30 + x * 27.5, 30 + y * 27.5, 27.5, 27.5);
    }));
    run();
  }));
  return el("div", { class: "card", id: "digits" },
    el("h3", { text: "Digits: draw one, LeNet-5 reads it" }),
    el("div", { class: "cols" },
      el("div", {}, canvas, el("div", { class: "row" }, classify, wipe),
        el("div", { class: "row" }, field("Example digit", example), exampleBtn), status),
      el("div", {}, prediction, bars)),
    maps);
}
