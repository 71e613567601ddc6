// Draw-a-digit page: pointer events on a canvas, debounced calls to POST /api/predict, bars for the
// ten probabilities and the 28x28 image the model saw; and a wide pad to write a number, read through
// POST /api/read with a box drawn around each digit read. No libraries, no build step, works offline.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const digitEl = document.getElementById("digit");
const confEl = document.getElementById("confidence");
const seenEl = document.getElementById("seen");
const barsEl = document.getElementById("bars");
const messageEl = document.getElementById("message");
const invertEl = document.getElementById("invert");
const uploadEl = document.getElementById("upload");

const STROKE = 18; // px on the 280 px pad: about MNIST's stroke width once the digit is scaled to 20 px
const DEBOUNCE_MS = 100;
let pointerId = null, last = null, dirty = false, timer = null, inFlight = false, queued = false;
// Bumped by Clear and by an upload: an answer for an older drawing is dropped instead of shown.
let generation = 0;
// The picture behind the answer shown (the pad's PNG or the uploaded file), for "wrong? it is a ...".
let shownPicture = null, correctionsOn = false;
const correctEl = document.getElementById("correct");

const colours = () => (invertEl.checked ? { paper: "#000", ink: "#fff" } : { paper: "#fff", ink: "#000" });

function clearPad() {
  generation += 1;
  clearTimeout(timer);
  ctx.fillStyle = colours().paper;
  ctx.fillRect(0, 0, pad.width, pad.height);
  pad.classList.toggle("inverted", invertEl.checked);
  dirty = false;
  shownPicture = null;
  showEmpty("draw something");
  messageEl.textContent = "";
}

function showEmpty(text) {
  digitEl.textContent = "?";
  digitEl.classList.remove("low");
  digitEl.classList.add("empty");
  confEl.textContent = text;
  confEl.className = "muted";
  seenEl.hidden = true;
  correctEl.hidden = true;
  renderBars(null);
}

function renderBars(probabilities) {
  const top = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  barsEl.replaceChildren(...Array.from({ length: 10 }, (_, d) => {
    const p = probabilities ? probabilities[d] : 0;
    const row = document.createElement("div");
    row.className = "bar" + (d === top ? " top" : "");
    row.setAttribute("role", "listitem");
    row.dataset.digit = String(d);
    const label = document.createElement("span");
    label.className = "d";
    label.textContent = String(d);
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    track.append(fill);
    const value = document.createElement("span");
    value.className = "p";
    value.textContent = probabilities ? `${(p * 100).toFixed(1)}%` : "";
    row.append(label, track, value);
    row.setAttribute("aria-label", `${d}: ${(p * 100).toFixed(1)}%`);
    return row;
  }));
}

function show(result, ms) {
  if (result.digit === null || result.digit === undefined) {
    if (result.reason === "not a digit") {
      showEmpty("not a digit");
    } else {
      showEmpty(result.no_digit ? "no digit found: draw bigger or darker" : (result.error || "no answer"));
    }
  } else {
    digitEl.textContent = String(result.digit);
    digitEl.classList.remove("empty");
    digitEl.classList.toggle("low", !!result.low_confidence);
    confEl.textContent = `${(result.confidence * 100).toFixed(1)}% sure` + (result.low_confidence ? ": low, check it" : "");
    confEl.className = result.low_confidence ? "low" : "";
    renderBars(result.probabilities);
  }
  if (result.preprocessed) {
    seenEl.src = "data:image/png;base64," + result.preprocessed;
    seenEl.hidden = false;
  }
  messageEl.textContent = ms === undefined ? "" : `answered in ${Math.round(ms)} ms`;
  // A refused picture can be a digit the model missed; a blank one holds nothing to save.
  const answered = result.digit !== null && result.digit !== undefined || result.reason === "not a digit";
  correctEl.hidden = !(correctionsOn && shownPicture && answered);
}

// "Wrong? It is a 7": the picture is saved as a 7 in the server's corrections folder (serve --corrections DIR).
async function correct(digit) {
  if (!shownPicture) return;
  const form = new FormData();
  form.append("file", shownPicture.blob, shownPicture.name);
  try {
    const [saved] = await send(form, `/api/correct?digit=${digit}`);
    messageEl.textContent = `saved as a ${saved.label}: ${saved.class_pictures} picture`
      + `${saved.class_pictures === 1 ? "" : "s"} of ${saved.label} to fine-tune on`;
  } catch (err) {
    messageEl.textContent = "not saved: " + err.message;
  }
}

document.getElementById("correct-digits").replaceChildren(...Array.from({ length: 10 }, (_, d) => {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = String(d);
  button.dataset.digit = String(d);
  button.title = `save this picture as a ${d}, to fine-tune the model on`;
  button.addEventListener("click", () => correct(d));
  return button;
}));

async function send(body, url = "/api/predict") {
  const started = performance.now();
  const response = await fetch(url, { method: "POST", body });
  const data = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return [data, performance.now() - started];
}

async function predictCanvas() {
  if (!dirty) return;
  if (inFlight) { queued = true; return; } // one request at a time; the latest drawing goes next
  inFlight = true;
  const asked = generation;
  try {
    const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("file", blob, "canvas.png");
    const [result, ms] = await send(form);
    if (asked === generation) { shownPicture = { blob, name: "canvas.png" }; show(result, ms); }
  } catch (err) {
    if (asked === generation) messageEl.textContent = "prediction failed: " + err.message;
  } finally {
    inFlight = false;
    if (queued) { queued = false; predictCanvas(); }
  }
}

function schedule(delay) {
  clearTimeout(timer);
  timer = setTimeout(predictCanvas, delay);
}

function width(event) {
  // A pen draws thinner or thicker with pressure; mouse and touch report a constant 0.5 (or 0).
  return event.pointerType === "pen" && event.pressure > 0 ? STROKE * (0.6 + event.pressure * 0.8) : STROKE;
}

// Pointer drawing on a canvas (mouse, touch, pen; one pointer at a time): `changed(resting)` is called after
// each move (resting false) and when the pointer lifts (resting true).
function attachDrawing(canvas, changed) {
  const c = canvas.getContext("2d");
  let id = null, at = null;
  const point = (event) => {
    const r = canvas.getBoundingClientRect();
    return { x: (event.clientX - r.left) * (canvas.width / r.width), y: (event.clientY - r.top) * (canvas.height / r.height) };
  };
  canvas.addEventListener("pointerdown", (event) => {
    if (id !== null || event.button > 0) return; // one finger draws; a second one is ignored
    event.preventDefault();
    id = event.pointerId;
    canvas.setPointerCapture(id);
    at = point(event);
    c.fillStyle = colours().ink;
    c.beginPath();
    c.arc(at.x, at.y, width(event) / 2, 0, Math.PI * 2);
    c.fill();
    changed(false);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== id) return;
    // Coalesced events keep fast strokes smooth: the browser may batch several positions per frame.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) {
      const p = point(e);
      c.strokeStyle = colours().ink;
      c.lineWidth = width(e);
      c.lineCap = "round";
      c.lineJoin = "round";
      c.beginPath();
      c.moveTo(at.x, at.y);
      c.lineTo(p.x, p.y);
      c.stroke();
      at = p;
    }
    changed(false);
  });
  for (const type of ["pointerup", "pointercancel"]) {
    canvas.addEventListener(type, (event) => {
      if (event.pointerId !== id) return;
      id = null;
      changed(true);
    });
  }
}

attachDrawing(pad, (resting) => { dirty = true; schedule(resting ? 0 : DEBOUNCE_MS); });

// ---- Write a number: the wide pad, POST /api/read, and the boxes of the digits read.

const numberPad = document.getElementById("number-pad");
const numberCtx = numberPad.getContext("2d");
const boxesEl = document.getElementById("number-boxes");
const boxesCtx = boxesEl.getContext("2d");
const numberEl = document.getElementById("number");
const numberConfEl = document.getElementById("number-confidence");
let numberDirty = false, numberTimer = null, numberBusy = false, numberQueued = false, numberGeneration = 0;

function clearNumber() {
  numberGeneration += 1;
  clearTimeout(numberTimer);
  numberCtx.fillStyle = colours().paper;
  numberCtx.fillRect(0, 0, numberPad.width, numberPad.height);
  numberPad.classList.toggle("inverted", invertEl.checked);
  numberDirty = false;
  showNumber(null);
}

function showNumber(result, ms) {
  boxesCtx.clearRect(0, 0, boxesEl.width, boxesEl.height);
  numberEl.dataset.boxes = "0";
  if (!result || result.text === null || result.text === undefined) {
    numberEl.textContent = "?";
    numberEl.className = "empty";
    numberConfEl.textContent = result ? (result.reason ? (result.reason.startsWith("not a digit")
      ? "not digits: write a number" : "no digit found: write bigger or darker") : (result.error || "no answer"))
      : "write digits side by side";
    numberConfEl.className = "muted";
    return;
  }
  numberEl.textContent = result.text;
  numberEl.className = result.low_confidence ? "low" : "";
  const each = result.digits.map((d) => `${d.digit} ${(d.confidence * 100).toFixed(0)}%`).join(" · ");
  numberConfEl.textContent = `${(result.confidence * 100).toFixed(1)}% sure` + (result.low_confidence ? ": low, check it" : "")
    + ` (${each})` + (ms === undefined ? "" : `, ${Math.round(ms)} ms`);
  numberConfEl.className = result.low_confidence ? "low" : "muted";
  // Boxes are in the picture's pixels, which are the pad's.
  const sx = boxesEl.width / result.size[0], sy = boxesEl.height / result.size[1];
  boxesCtx.lineWidth = 2;
  boxesCtx.font = "bold 20px system-ui, sans-serif";
  for (const d of result.digits) {
    const [l, t, r, b] = d.box;
    const colour = d.confidence < 0.8 ? "#d97706" : "#2f6fde";
    boxesCtx.strokeStyle = colour;
    boxesCtx.fillStyle = colour;
    boxesCtx.strokeRect(l * sx - 3, t * sy - 3, (r - l) * sx + 6, (b - t) * sy + 6);
    boxesCtx.fillText(String(d.digit), l * sx - 2, Math.max(18, t * sy - 7));
  }
  numberEl.dataset.boxes = String(result.digits.length);
}

async function readNumber() {
  if (!numberDirty) return;
  if (numberBusy) { numberQueued = true; return; } // one request at a time; the latest writing goes next
  numberBusy = true;
  const asked = numberGeneration;
  try {
    const blob = await new Promise((resolve) => numberPad.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("file", blob, "number.png");
    const [result, ms] = await send(form, "/api/read");
    if (asked === numberGeneration) showNumber(result, ms);
  } catch (err) {
    if (asked === numberGeneration) numberConfEl.textContent = "reading failed: " + err.message;
  } finally {
    numberBusy = false;
    if (numberQueued) { numberQueued = false; readNumber(); }
  }
}

attachDrawing(numberPad, (resting) => {
  numberDirty = true;
  clearTimeout(numberTimer);
  numberTimer = setTimeout(readNumber, resting ? 0 : DEBOUNCE_MS);
});
document.getElementById("number-clear").addEventListener("click", clearNumber);

function showUploaded(file) {
  // The picture is shown on the pad (drawing on it afterwards sends the pad); the file itself is what is sent.
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    ctx.fillStyle = colours().paper;
    ctx.fillRect(0, 0, pad.width, pad.height);
    const scale = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * scale, h = img.height * scale;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.onerror = () => URL.revokeObjectURL(url);
  img.src = url;
}

async function upload(file) {
  if (!file) return;
  clearPad();
  showUploaded(file);
  const asked = generation;
  const form = new FormData();
  form.append("file", file, file.name);
  confEl.textContent = `reading ${file.name}…`;
  try {
    const [result, ms] = await send(form);
    if (asked === generation) { shownPicture = { blob: file, name: file.name }; show(result, ms); }
  } catch (err) {
    if (asked === generation) { showEmpty("could not read the image"); messageEl.textContent = err.message; }
  }
}

ctx.lineCap = "round";
ctx.lineJoin = "round";
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload-button").addEventListener("click", () => uploadEl.click());
uploadEl.addEventListener("change", () => { upload(uploadEl.files[0]); uploadEl.value = ""; });
invertEl.addEventListener("change", () => { clearPad(); clearNumber(); });
document.addEventListener("keydown", (event) => { if (event.key === "Escape") { clearPad(); clearNumber(); } });
pad.addEventListener("dragover", (event) => { event.preventDefault(); pad.classList.add("drop"); });
pad.addEventListener("dragleave", () => pad.classList.remove("drop"));
pad.addEventListener("drop", (event) => {
  event.preventDefault();
  pad.classList.remove("drop");
  upload(event.dataTransfer.files[0]);
});

fetch("/api/model").then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`)))).then((m) => {
  const parts = [`model: ${m.recipe}` + (m.ensemble > 1 ? ` (ensemble of ${m.ensemble})` : "")];
  if (typeof m.params === "number") parts.push(`${m.params.toLocaleString("en")} parameters`);
  if (typeof m.test_accuracy === "number") parts.push(`${(m.test_accuracy * 100).toFixed(2)}% on the ${m.dataset} test set`);
  if (m.status && m.status !== "complete") parts.push(`training ${m.status}`);
  correctionsOn = !!m.corrections;
  document.getElementById("model-info").textContent = parts.join(" · ");
}).catch((err) => { document.getElementById("model-info").textContent = `model info unavailable (${err.message})`; });

clearPad();
clearNumber();
