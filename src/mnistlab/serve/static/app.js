// Draw-a-digit page: pointer events on a canvas, debounced calls to POST /api/predict, bars for the
// ten probabilities and the 28x28 image the model saw. No libraries, works offline.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const digitEl = document.getElementById("digit");
const confEl = document.getElementById("confidence");
const seenEl = document.getElementById("seen");
const barsEl = document.getElementById("bars");
const messageEl = document.getElementById("message");
let drawing = false, last = null, dirty = false, timer = null, inFlight = false, queued = false;

function clearPad() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  dirty = false;
  digitEl.textContent = "?";
  digitEl.classList.remove("low");
  confEl.textContent = "draw something";
  seenEl.removeAttribute("src");
  messageEl.textContent = "";
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
    row.innerHTML = `<span>${d}</span><div class="track"><div class="fill"></div></div><span class="p">${(p * 100).toFixed(1)}%</span>`;
    row.querySelector(".fill").style.width = `${(p * 100).toFixed(1)}%`;
    return row;
  }));
}

function show(result) {
  if (result.digit === null || result.digit === undefined) {
    digitEl.textContent = "?";
    confEl.textContent = result.error || "no digit found";
    renderBars(null);
  } else {
    digitEl.textContent = String(result.digit);
    digitEl.classList.toggle("low", !!result.low_confidence);
    confEl.textContent = `${(result.confidence * 100).toFixed(1)}% sure` + (result.low_confidence ? " (low: check it)" : "");
    renderBars(result.probabilities);
  }
  if (result.preprocessed) seenEl.src = "data:image/png;base64," + result.preprocessed;
  messageEl.textContent = "";
}

async function send(body, headers) {
  const response = await fetch("/api/predict", { method: "POST", body, headers });
  const data = await response.json().catch(() => ({ detail: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
  return data;
}

async function predictCanvas() {
  if (!dirty) return;
  if (inFlight) { queued = true; return; }
  inFlight = true;
  try {
    const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    const form = new FormData();
    form.append("file", blob, "canvas.png");
    show(await send(form));
  } catch (err) {
    messageEl.textContent = "prediction failed: " + err.message;
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

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  last = point(event);
  ctx.beginPath();
  ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, Math.PI * 2);
  ctx.fillStyle = "#000";
  ctx.fill();
  dirty = true;
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  const p = point(event);
  const pressure = event.pointerType === "pen" && event.pressure > 0 ? 0.6 + event.pressure * 0.8 : 1;
  ctx.lineWidth = 18 * pressure;
  ctx.beginPath();
  ctx.moveTo(last.x, last.y);
  ctx.lineTo(p.x, p.y);
  ctx.stroke();
  last = p;
  dirty = true;
  schedule(100);
});
for (const type of ["pointerup", "pointercancel"]) {
  pad.addEventListener(type, () => { if (drawing) { drawing = false; schedule(0); } });
}

ctx.lineCap = "round";
ctx.lineJoin = "round";
ctx.strokeStyle = "#000";
ctx.lineWidth = 18;
document.getElementById("clear").addEventListener("click", clearPad);
document.getElementById("upload").addEventListener("change", async (event) => {
  const file = event.target.files[0];
  if (!file) return;
  const form = new FormData();
  form.append("file", file, file.name);
  try { show(await send(form)); } catch (err) { messageEl.textContent = "upload failed: " + err.message; }
  event.target.value = "";
});

fetch("/api/model").then((r) => r.json()).then((m) => {
  const acc = typeof m.test_accuracy === "number" ? `, ${(m.test_accuracy * 100).toFixed(2)}% on the ${m.dataset} test set` : "";
  document.getElementById("model-info").textContent = `model: ${m.recipe}${m.ensemble > 1 ? ` (ensemble of ${m.ensemble})` : ""}${acc}`;
}).catch(() => {});

clearPad();
