// faces.js: the Faces tab over the face API: enroll a person from a file or the webcam; list,
// rename, remove; verify a photo against a person; identify every face in a photo (boxes and
// names drawn); live identification from the webcam at a few frames per second.
import { api, guarded, showError } from "./api.js";
import { imagePicker } from "./samples.js";
import { el, field, fmt, select } from "./ui.js";

let persons = [];
const camera = { stream: null, video: null };

async function startCamera(video) {
  if (!camera.stream) {
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser gives no camera here (use http://127.0.0.1 or https)");
    camera.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  }
  video.srcObject = camera.stream;
  await video.play();
  if (!video.videoWidth) await new Promise((r) => video.addEventListener("loadeddata", r, { once: true }));
  return video;
}

function stopCamera(video) {
  if (camera.stream) for (const t of camera.stream.getTracks()) t.stop();
  camera.stream = null;
  video.srcObject = null;
}

function frameBlob(video) {
  const c = el("canvas", { width: video.videoWidth, height: video.videoHeight });
  c.getContext("2d").drawImage(video, 0, 0);
  return new Promise((resolve) => c.toBlob((b) => resolve(new File([b], "frame.jpg", { type: "image/jpeg" })), "image/jpeg", 0.9));
}

function drawFaces(ctx, faces, scale = 1) {
  ctx.lineWidth = Math.max(2, 3 * scale);
  ctx.font = `${Math.max(14, Math.round(18 * scale))}px system-ui, sans-serif`;
  for (const f of faces) {
    const b = f.box;
    const known = f.name !== "unknown";
    ctx.strokeStyle = known ? "#1b7a3a" : "#b3261e";
    ctx.strokeRect(b.left, b.top, b.right - b.left, b.bottom - b.top);
    const label = known ? `${f.name} (${Number(f.distance).toFixed(2)})` : "unknown";
    const tw = ctx.measureText(label).width + 8, th = Math.max(18, 22 * scale);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.fillRect(b.left, Math.max(0, b.top - th), tw, th);
    ctx.fillStyle = "#fff";
    ctx.fillText(label, b.left + 4, Math.max(0, b.top - th) + th - 5);
  }
}

async function identifyFile(file) {
  const form = new FormData();
  form.append("file", file);
  return api("/identify", { form });
}

export async function init(panel) {
  const list = el("ul", { class: "persons", id: "face-persons", "aria-live": "polite" });
  const video = el("video", { id: "face-video", muted: true, playsinline: true, "aria-label": "webcam" });
  const overlay = el("canvas", { id: "face-overlay", "aria-hidden": "true" });
  const personMenu = select("verify-person", []);

  // persons
  const refresh = () => guarded(list, async () => {
    const r = await api("/persons?limit=1000");
    persons = r.items || [];
    list.replaceChildren(...persons.map(personRow));
    if (!persons.length) list.append(el("li", { class: "muted", text: "nobody enrolled yet" }));
    const was = personMenu.value;
    personMenu.replaceChildren(...persons.map((p) => el("option", { value: p.name, text: p.name })));
    if (persons.some((p) => p.name === was)) personMenu.value = was;
  });
  function personRow(p) {
    const name = el("input", { id: `person-${p.id}-name`, value: p.name, "aria-label": `new name for ${p.name}` });
    const rename = el("button", { type: "button", class: "secondary", text: "Rename", id: `person-${p.id}-rename`,
      onclick: () => guarded(name, async () => { await api(`/persons/${p.id}`, { method: "PATCH", json: { name: name.value } }); await refresh(); }) });
    const remove = el("button", { type: "button", class: "secondary", text: "Remove", id: `person-${p.id}-remove`,
      "aria-label": `remove ${p.name}`,
      onclick: () => guarded(remove, async () => { await api(`/persons/${p.id}`, { method: "DELETE", as: "none" }); await refresh(); }) });
    return el("li", {}, el("span", { class: "name", text: p.name }),
      el("span", { class: "muted", text: `${p.photos ?? "?"} photo(s)` }), name, rename, remove);
  }

  // enroll
  const enrollName = el("input", { id: "enroll-name", autocomplete: "off", placeholder: "e.g. Grace Hopper" });
  const enrollPicker = await imagePicker("enroll", "Photo", "");
  const enrollBtn = el("button", { type: "button", id: "enroll-run", text: "Enroll" });
  const enrollCam = el("button", { type: "button", class: "secondary", id: "enroll-webcam", text: "Enroll from webcam" });
  const enrollStatus = el("p", { id: "enroll-status", "aria-live": "polite" });
  async function enroll(file, control) {
    const name = enrollName.value.trim();
    if (!name) return showError(enrollName, "give the person's name first");
    showError(enrollName, null);
    if (!file) return showError(control, "choose a photo or an example first");
    enrollStatus.textContent = `enrolling ${name}…`;
    let person = persons.find((p) => p.name === name);
    let created = false;
    if (!person) {
      person = await api("/persons", { json: { name } });
      created = true;
    }
    const form = new FormData();
    form.append("file", file);
    try {
      await api(`/persons/${person.id}/photos`, { form });
    } catch (err) {
      enrollStatus.textContent = "";
      if (created) await api(`/persons/${person.id}`, { method: "DELETE", as: "none" }).catch(() => null);
      throw err;
    }
    enrollStatus.textContent = `${name} enrolled.`;
    await refresh();
  }
  enrollBtn.addEventListener("click", () => guarded(enrollBtn, async () => enroll(await enrollPicker.file(), enrollBtn)));
  enrollCam.addEventListener("click", () => guarded(enrollCam, async () => {
    await startCamera(video);
    await enroll(await frameBlob(video), enrollCam);
  }));

  // verify
  const verifyPicker = await imagePicker("verify", "Photo", "");
  const verifyBtn = el("button", { type: "button", id: "verify-run", text: "Verify" });
  const verdict = el("p", { id: "verify-result", "aria-live": "polite" });
  verifyBtn.addEventListener("click", () => guarded(verifyBtn, async () => {
    const file = await verifyPicker.file();
    if (!file) return showError(verifyBtn, "choose a photo or an example first");
    if (!personMenu.value) return showError(verifyBtn, "enroll someone first");
    const form = new FormData();
    form.append("file", file);
    form.append("person", personMenu.value);
    verdict.textContent = "comparing…";
    const r = await api("/verify", { form }).catch((err) => { verdict.textContent = ""; throw err; });
    verdict.replaceChildren(el("span", { class: r.match ? "ok" : "bad", text: r.match ? "match" : "no match" }),
      ` — distance ${fmt(r.distance, 3)}, threshold tau ${fmt(r.tau, 3)}`);
  }));

  // identify
  const idPicker = await imagePicker("identify", "Photo", "");
  const idBtn = el("button", { type: "button", id: "identify-run", text: "Identify" });
  const idCanvas = el("canvas", { id: "identify-canvas", role: "img", "aria-label": "photo with the faces found" });
  const idNames = el("ul", { id: "identify-names", "aria-live": "polite" });
  idBtn.addEventListener("click", () => guarded(idBtn, async () => {
    const file = await idPicker.file();
    if (!file) return showError(idBtn, "choose a photo or an example first");
    idNames.replaceChildren(el("li", { class: "muted", text: "looking for faces…" }));
    const [r, bitmap] = await Promise.all([identifyFile(file), createImageBitmap(file)])
      .catch((err) => { idNames.replaceChildren(); throw err; });
    idCanvas.width = bitmap.width;
    idCanvas.height = bitmap.height;
    const ctx = idCanvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    drawFaces(ctx, r.faces, bitmap.width / 640);
    idCanvas.setAttribute("aria-label", `faces found: ${r.faces.map((f) => f.name).join(", ") || "none"}`);
    idNames.replaceChildren(...(r.faces.length ? r.faces.map((f) => el("li", { class: "face-name", text: f.name })) :
      [el("li", { class: "muted", text: "no face found" })]));
  }));

  // live
  const liveBtn = el("button", { type: "button", id: "live-toggle", text: "Start live identification" });
  const liveStatus = el("p", { id: "live-status", "aria-live": "polite" });
  let live = false;
  liveBtn.addEventListener("click", () => guarded(liveBtn, async () => {
    if (live) {
      live = false;
      liveBtn.textContent = "Start live identification";
      stopCamera(video);
      return;
    }
    await startCamera(video);
    live = true;
    liveBtn.textContent = "Stop";
    let frames = 0;
    const t0 = performance.now();
    while (live) {
      const start = performance.now();
      const frame = await frameBlob(video);
      const r = await identifyFile(frame).catch((err) => { showError(liveBtn, err); return null; });
      if (!live) break;
      if (r) {
        overlay.width = video.videoWidth;
        overlay.height = video.videoHeight;
        const ctx = overlay.getContext("2d");
        ctx.clearRect(0, 0, overlay.width, overlay.height);
        drawFaces(ctx, r.faces);
        frames += 1;
        liveStatus.textContent = `${(frames / ((performance.now() - t0) / 1000)).toFixed(1)} frames/s; ` +
          `faces: ${r.faces.map((f) => f.name).join(", ") || "none"}`;
        liveStatus.dataset.names = r.faces.map((f) => f.name).join(",");
      }
      await new Promise((ok) => setTimeout(ok, Math.max(0, 250 - (performance.now() - start))));
    }
  }));

  panel.append(
    el("h2", { text: "Faces" }),
    el("div", { class: "cols" },
      el("div", { class: "card" }, el("h3", { text: "Enroll a person" }),
        el("div", { class: "row" }, field("Name", enrollName)), enrollPicker.node,
        el("div", { class: "row" }, enrollBtn, enrollCam), enrollStatus,
        el("h3", { text: "Persons" }), list),
      el("div", { class: "card" }, el("h3", { text: "Verify: is this the person?" }),
        verifyPicker.node, el("div", { class: "row" }, field("Person", personMenu), verifyBtn), verdict)),
    el("div", { class: "card", id: "identify-card" }, el("h3", { text: "Identify: who is in this photo?" }),
      idPicker.node, el("div", { class: "row" }, idBtn), idNames,
      el("div", { class: "pics" }, idCanvas)),
    el("div", { class: "card" }, el("h3", { text: "Live identification from the webcam" }),
      el("div", { class: "row" }, liveBtn), liveStatus,
      el("div", { class: "live" }, video, overlay)));
  await refresh();
}
