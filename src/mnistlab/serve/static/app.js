// Draw-a-digit page: pointer events on a canvas, debounced calls to POST /api/predict, bars for the
// ten probabilities and the 28x28 image the model saw. No libraries, no build step, works offline.
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

const colours = () => (invertEl.checked ? { paper: "#000", ink: "#fff" } : { paper: "#fff", ink: "#000" });

function clearPad() {
  generation += 1;
  clearTimeout(timer);
  ctx.fillStyle = colours().paper;
  ctx.fillRect(0, 0, pad.width, pad.height);
  pad.classList.toggle("inverted", invertEl.checked);
  dirty = false;
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
}

async function send(body) {
  const started = performance.now();
  const response = await fetch("/api/predict", { method: "POST", body });
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
    if (asked === generation) show(result, ms);
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

function point(event) {
  const r = pad.getBoundingClientRect();
  return { x: (event.clientX - r.left) * (pad.width / r.width), y: (event.clientY - r.top) * (pad.height / r.height) };
}

function width(event) {
  // A pen draws thinner or thicker with pressure; mouse and touch report a constant 0.5 (or 0).
  return event.pointerType === "pen" && event.pressure > 0 ? STROKE * (0.6 + event.pressure * 0.8) : STROKE;
}

pad.addEventListener("pointerdown", (event) => {
  if (pointerId !== null || event.button > 0) return; // one finger draws; a second one is ignored
  event.preventDefault();
  pointerId = event.pointerId;
  pad.setPointerCapture(pointerId);
  last = point(event);
  ctx.fillStyle = colours().ink;
  ctx.beginPath();
  ctx.arc(last.x, last.y, width(event) / 2, 0, Math.PI * 2);
  ctx.fill();
  dirty = true;
});

pad.addEventListener("pointermove", (event) => {
  if (event.pointerId !== pointerId) return;
  // Coalesced events keep fast strokes smooth: the browser may batch several positions per frame.
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
  for (const e of events.length ? events : [event]) {
    const p = point(e);
    ctx.strokeStyle = colours().ink;
    ctx.lineWidth = width(e);
    ctx.beginPath();
    ctx.moveTo(last.x, last.y);
    ctx.lineTo(p.x, p.y);
    ctx.stroke();
    last = p;
  }
  dirty = true;
  schedule(DEBOUNCE_MS);
});

for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, (event) => {
    if (event.pointerId !== pointerId) return;
    pointerId = null;
    schedule(0);
  });
}

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
    if (asked === generation) show(result, ms);
  } catch (err) {
    if (asked === generation) { showEmpty("could not read the image"); messageEl.textContent = err.message; }
  }
}

ctx.lineCap = "round";
ctx.lineJoin = "round";
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload-button").addEventListener("click", () => uploadEl.click());
uploadEl.addEventListener("change", () => { upload(uploadEl.files[0]); uploadEl.value = ""; });
invertEl.addEventListener("change", clearPad);
document.addEventListener("keydown", (event) => { if (event.key === "Escape") clearPad(); });
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
  document.getElementById("model-info").textContent = parts.join(" · ");
}).catch((err) => { document.getElementById("model-info").textContent = `model info unavailable (${err.message})`; });

clearPad();
