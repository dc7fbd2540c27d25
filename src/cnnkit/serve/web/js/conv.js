// conv.js: the Convolution tab. Three views: the notes' 2-D example with a step-through, convolution
// over volume, and learning a filter's nine numbers by gradient descent. Every number comes from
// cnnkit.conv on the server (POST /conv/explain, /conv/volume, /conv/learn).
import { api, guarded, showError } from "./api.js";
import { debounce, el, field, fmt, inputGrid, lineChart, select, viewGrid } from "./ui.js";

const notesExample = (n = 6) =>
  [...Array(n)].map(() => [...Array(n)].map((_, c) => (c < n / 2 ? 10 : 0)));

export async function init(panel) {
  const kernels = await api("/conv/kernels").catch(() => ({}));
  const views = { plane: planeView(kernels), volume: volumeView(), learn: learnView(kernels) };
  const names = { plane: "2-D step by step", volume: "Over volume", learn: "Learned filter" };
  const bar = el("div", { class: "views", role: "group", "aria-label": "Convolution views" });
  panel.append(el("h2", { text: "Convolution" }), bar);
  for (const [key, view] of Object.entries(views)) {
    view.hidden = key !== "plane";
    panel.append(view);
    bar.append(el("button", {
      id: `conv-view-${key}`, type: "button", "aria-pressed": String(key === "plane"),
      text: names[key],
      onclick: (e) => {
        for (const b of bar.children) b.setAttribute("aria-pressed", String(b === e.currentTarget));
        for (const [k, v] of Object.entries(views)) v.hidden = k !== key;
      },
    }));
  }
}

function planeView(kernels) {
  const state = { input: notesExample(), kernel: kernels.vertical || [[1, 0, -1], [1, 0, -1], [1, 0, -1]],
    steps: [], index: 0, timer: null, result: null };
  const box = el("div", { class: "card", id: "conv-plane" });
  const nSel = select("conv-n", [4, 5, 6, 7, 8, 9, 10].map(String), "6");
  const kSel = select("conv-kernel", [...Object.keys(kernels), "typed"], "vertical");
  const fSel = select("conv-f", ["1", "2", "3", "4", "5"], "3");
  const pSel = select("conv-p", [["valid", "valid (p = 0)"], ["same", "same"], ["custom", "p ="]], "valid");
  const pNum = el("input", { id: "conv-p-value", type: "number", min: "0", max: "5", value: "1",
    "aria-label": "padding p", hidden: true });
  const sNum = el("input", { id: "conv-s", type: "number", min: "1", max: "5", value: "1" });
  const inputSlot = el("div", { id: "conv-input-box" }), kernelSlot = el("div", { id: "conv-filter-box" });
  const paddedSlot = el("div", { class: "scroll" });
  const outSlot = el("div", { class: "scroll" });
  const formula = el("p", { class: "formula", id: "conv-formula", "aria-live": "polite" });
  const products = el("p", { class: "products", id: "conv-products", "aria-live": "polite" });
  const prev = el("button", { type: "button", class: "secondary", id: "conv-prev", text: "◀ Previous" });
  const play = el("button", { type: "button", id: "conv-play", text: "▶ Play" });
  const next = el("button", { type: "button", class: "secondary", id: "conv-next", text: "Next ▶" });
  const reset = el("button", { type: "button", class: "secondary", id: "conv-reset", text: "Notes' example" });

  const padding = () => (pSel.value === "custom" ? Number(pNum.value) : pSel.value);
  const drawInput = () => {
    inputSlot.replaceChildren(inputGrid("conv-input", state.input, "input", (v) => {
      state.input = v; refresh();
    }));
  };
  const drawKernel = () => {
    kernelSlot.replaceChildren(inputGrid("conv-filter", state.kernel, "filter", (v) => {
      state.kernel = v; kSel.value = "typed"; refresh();
    }));
  };
  const showStep = () => {
    const r = state.result;
    if (!r) return;
    const st = r.steps[state.index];
    const f = state.kernel.length;
    const inWindow = (i, j) => st && i >= st.top && i < st.top + f && j >= st.left && j < st.left + f;
    const p = r.p;
    const n = state.input.length, m = state.input[0].length;
    paddedSlot.replaceChildren(viewGrid(r.padded, "padded input with the window", (i, j) =>
      [(i < p || j < p || i >= n + p || j >= m + p) ? "pad" : "", inWindow(i, j) ? "hi" : ""].join(" ")));
    outSlot.replaceChildren(viewGrid(r.output, "output", (i, j) =>
      st && i === st.h && j === st.w ? "current" : "", false));
    outSlot.firstChild.id = "conv-output";
    if (st) {
      const terms = st.window.flatMap((row, i) => row.map((v, j) => `${fmt(v, 2)}×${fmt(state.kernel[i][j], 2)}`));
      products.textContent = `Z[${st.h + 1},${st.w + 1}] = ${terms.join(" + ")}` +
        `${r.bias ? ` + ${fmt(r.bias)}` : ""} = ${fmt(st.total, 3)}  (step ${state.index + 1} of ${r.steps.length})`;
    }
  };
  // an error goes beside the control changed last (the input grid, the filter, n, f, p or s)
  let cause = formula;
  const controls = [nSel, kSel, fSel, pSel, pNum, sNum, inputSlot, kernelSlot, formula];
  for (const c of controls) {
    c.addEventListener("input", () => { cause = c; }, true);
    c.addEventListener("change", () => { cause = c; }, true);
  }
  const refresh = debounce(() => guarded(cause, async () => {
    for (const c of controls) if (c !== cause) showError(c, null);
    const r = await api("/conv/explain", { json: {
      input: state.input, kernel: state.kernel, p: padding(), s: Number(sNum.value) } });
    state.result = r;
    state.index = Math.min(state.index, r.steps.length - 1);
    formula.textContent = `n_H = ${r.formula_h}` + (r.formula_w !== r.formula_h ? `;  n_W = ${r.formula_w}` : "") +
      `  →  output ${r.output.length}×${r.output[0].length}`;
    showStep();
  }));
  const setKernelFromPreset = () => {
    if (kSel.value !== "typed" && kernels[kSel.value]) {
      state.kernel = kernels[kSel.value]; fSel.value = "3"; drawKernel();
    }
  };
  const stop = () => { clearInterval(state.timer); state.timer = null; play.textContent = "▶ Play"; };
  const move = (d) => {
    if (!state.result) return;
    const n = state.result.steps.length;
    state.index = (state.index + d + n) % n;
    showStep();
  };

  nSel.addEventListener("change", () => { state.input = notesExample(Number(nSel.value)); drawInput(); refresh(); });
  kSel.addEventListener("change", () => { setKernelFromPreset(); refresh(); });
  fSel.addEventListener("change", () => {
    const f = Number(fSel.value);
    if (f === 3 && kernels[kSel.value]) setKernelFromPreset();
    else {
      state.kernel = [...Array(f)].map((_, i) => [...Array(f)].map((_, j) => (j < f / 2 - 0.5 ? 1 : j > f / 2 - 0.5 ? -1 : 0)));
      kSel.value = "typed"; drawKernel();
    }
    refresh();
  });
  pSel.addEventListener("change", () => { pNum.hidden = pSel.value !== "custom"; refresh(); });
  pNum.addEventListener("input", refresh);
  sNum.addEventListener("input", refresh);
  prev.addEventListener("click", () => { stop(); move(-1); });
  next.addEventListener("click", () => { stop(); move(1); });
  play.addEventListener("click", () => {
    if (state.timer) return stop();
    play.textContent = "⏸ Pause";
    state.timer = setInterval(() => move(1), 700);
  });
  reset.addEventListener("click", () => { nSel.value = "6"; state.input = notesExample(); drawInput(); refresh(); });

  box.append(
    el("p", { class: "muted", text: "The notes' 6×6 example: bright left half (10), dark right half (0). " +
      "Edit any number; the output comes from cnnkit.conv.conv2d on the server." }),
    el("div", { class: "row" }, field("Input size n", nSel), field("Filter", kSel), field("f", fSel),
      el("div", { class: "field" }, el("label", { for: "conv-p", text: "Padding p" }), el("div", {}, pSel, " ", pNum)),
      field("Stride s", sNum), reset),
    el("div", { class: "cols" },
      el("div", {}, el("h3", { text: "Input" }), inputSlot),
      el("div", {}, el("h3", { text: "Filter" }), kernelSlot),
      el("div", {}, el("h3", { text: "Output" }), outSlot)),
    formula,
    el("h3", { text: "Step through: the window slides" }),
    el("div", { class: "row" }, prev, play, next),
    products,
    paddedSlot,
  );
  drawInput();
  drawKernel();
  refresh();
  return box;
}

function volumeView() {
  const box = el("div", { class: "card", id: "conv-volume" });
  let seed = 1;
  const rand = () => { seed = (seed * 16807) % 2147483647; return seed / 2147483647; };
  const makeInput = () => [0, 1, 2].map(() => [...Array(6)].map(() => [...Array(6)].map(() => Math.floor(rand() * 10))));
  const makeFilters = (k) => [...Array(k)].map(() => [0, 1, 2].map(() =>
    [...Array(3)].map(() => [...Array(3)].map(() => Math.floor(rand() * 3) - 1))));
  let input = makeInput();
  let filters = makeFilters(2);
  const kSel = select("vol-filters", ["1", "2", "3", "4"], "2");
  const pSel = select("vol-p", [["valid", "valid"], ["same", "same"]], "valid");
  const sSel = select("vol-s", ["1", "2"], "1");
  const again = el("button", { type: "button", class: "secondary", id: "vol-new", text: "New numbers" });
  const shape = el("p", { class: "formula", id: "vol-shape", "aria-live": "polite" });
  const slot = el("div", { class: "cols" });
  const channel = ["R", "G", "B"];
  const refresh = () => guarded(shape, async () => {
    const r = await api("/conv/volume", { json: { input, filters, p: pSel.value, s: Number(sSel.value) } });
    shape.textContent = r.shape;
    slot.replaceChildren(
      el("div", {}, el("h3", { text: "Input (6 × 6 × 3)" }),
        ...input.map((ch, i) => el("div", {}, el("span", { class: "muted", text: channel[i] }), viewGrid(ch, `input ${channel[i]}`, () => "", true)))),
      el("div", {}, el("h3", { text: `${filters.length} filter(s) (3 × 3 × 3)` }),
        ...filters.map((f, k) => el("div", {}, el("span", { class: "muted", text: `filter ${k + 1}: ` }),
          el("div", { class: "row" }, ...f.map((ch, i) => viewGrid(ch, `filter ${k + 1} ${channel[i]}`, () => "", true)))))),
      el("div", {}, el("h3", { text: "Output: one channel per filter" }),
        ...r.output.map((ch, k) => el("div", {}, el("span", { class: "muted", text: `channel ${k + 1}` }), viewGrid(ch, `output channel ${k + 1}`, () => "", true)))),
    );
  });
  kSel.addEventListener("change", () => { filters = makeFilters(Number(kSel.value)); refresh(); });
  pSel.addEventListener("change", refresh);
  sSel.addEventListener("change", refresh);
  again.addEventListener("click", () => { input = makeInput(); filters = makeFilters(Number(kSel.value)); refresh(); });
  box.append(
    el("p", { class: "muted", text: "An RGB input and 3×3×3 filters: each filter spans all three channels and " +
      "gives one output channel, so the output depth is the number of filters." }),
    el("div", { class: "row" }, field("Filters", kSel), field("Padding", pSel), field("Stride", sSel), again),
    shape, slot);
  refresh();
  return box;
}

function learnView(kernels) {
  const box = el("div", { class: "card", id: "conv-learn" });
  const target = select("learn-target", ["sobel", "vertical", "horizontal", "scharr", "laplacian"].filter((k) => !Object.keys(kernels).length || k in kernels), "sobel");
  const steps = el("input", { id: "learn-steps", type: "number", min: "10", max: "1000", value: "200" });
  const go = el("button", { type: "button", id: "learn-go", text: "Learn the filter" });
  const status = el("p", { id: "learn-status", "aria-live": "polite" });
  const numbers = el("div"), goal = el("div");
  const chart = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  chart.id = "learn-chart";
  let timer = null;
  go.addEventListener("click", () => guarded(go, async () => {
    clearInterval(timer);
    go.disabled = true;
    status.textContent = "fitting on the server…";
    try {
      const r = await api("/conv/learn", { json: { target: target.value, steps: Number(steps.value) } });
      goal.replaceChildren(viewGrid(r.target_kernel, "target filter"));
      let i = 0;
      const total = r.losses.length;
      const frame = () => {
        const grid = viewGrid(r.kernels[i], "learned filter");
        grid.id = "conv-learn-kernel";
        numbers.replaceChildren(grid);
        lineChart(chart, r.losses.slice(0, i + 1), { log: true, label: "loss J per step",
          xLabel: "step", yLabel: "J (log)" });
        status.textContent = `step ${i} of ${total - 1}: J = ${r.losses[i].toExponential(3)}, bias ${fmt(r.biases[i], 4)}`;
        if (i >= total - 1) { clearInterval(timer); status.textContent += " (done)"; }
        i = Math.min(total - 1, i + Math.max(1, Math.round(total / 90)));
      };
      frame();
      timer = setInterval(frame, 40);
    } finally {
      go.disabled = false;
    }
  }));
  box.append(
    el("p", { class: "muted", text: "The nine numbers need not be hand-made: start from random weights and fit the " +
      "3×3 filter by gradient descent (cnnkit.conv's backward) so that it reproduces a target edge map of a photo." }),
    el("div", { class: "row" }, field("Target edge map", target), field("Steps", steps), go),
    status,
    el("div", { class: "cols" },
      el("div", {}, el("h3", { text: "Learned filter" }), numbers),
      el("div", {}, el("h3", { text: "Target filter" }), goal),
      el("div", {}, el("h3", { text: "Loss" }), chart)));
  return box;
}
