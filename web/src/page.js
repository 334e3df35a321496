// The page: its controls, the picture, and the worker that runs the model. window.cganPage is the
// hook the tests and the benchmark drive (ready, draw, generate, picture).

import { inverted, parseText, textRow, tile } from "./pictures.js";

const MAX_COUNT = 256;
const MAX_RANDOM_STYLE = 2 ** 31; // as cgan_runtime.handwriting's random styles
const ZOOM = 4;
const element = (id) => document.getElementById(id);
const parameters = new URLSearchParams(location.search);

let worker = null;
let info = null;
let nextId = 0;
const pending = new Map();
let drawing = Promise.resolve(); // the last drawing asked for: each waits for the one before
let picture = null; // {width, height, pixels, name}: what the canvas shows, before invert
let drawnCount = 0;

function showError(message) {
  element("error").textContent = message;
  element("error").hidden = false;
  element("loading").hidden = true;
}

function clearError() {
  element("error").hidden = true;
}

function ask(message, transfer = []) {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...message, id }, transfer);
  });
}

function onWorkerMessage({ data }) {
  if (data.type === "progress") {
    showProgress(data);
    return;
  }
  const request = pending.get(data.id);
  pending.delete(data.id);
  if (data.type === "error") request.reject(new Error(data.message));
  else request.resolve(data);
}

const downloads = {};
function showProgress({ what, loaded, total }) {
  downloads[what] = { loaded, total };
  const all = Object.values(downloads);
  const loadedBytes = all.reduce((sum, item) => sum + item.loaded, 0);
  const totalBytes = all.reduce((sum, item) => sum + item.total, 0);
  const progress = element("progress");
  if (totalBytes) {
    progress.max = totalBytes;
    progress.value = Math.min(loadedBytes, totalBytes);
  }
  const megabytes = (bytes) => (bytes / 1e6).toFixed(1);
  element("progress-text").textContent =
    `Loading onnxruntime-web and the model: ${megabytes(loadedBytes)}` +
    (totalBytes ? ` of ${megabytes(totalBytes)} MB` : " MB");
}

function defaultThreads() {
  const asked = Number(parameters.get("threads"));
  if (Number.isInteger(asked) && asked >= 1) return asked;
  // At most 4, as onnxruntime-web caps its own default.
  return crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
}

async function start() {
  worker = new Worker(new URL("./worker.js", import.meta.url), { type: "module" });
  worker.onmessage = onWorkerMessage;
  const failed = new Promise((_, reject) => {
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(`onnxruntime-web could not be loaded (ort/ort.wasm.min.mjs): ${event.message || "the worker failed to start"}`));
    };
  });
  const modelUrl = new URL(parameters.get("model") || "model/cgan_generator.onnx", location.href).href;
  const ortUrl = new URL("./ort/", location.href).href;
  const ready = await Promise.race([ask({ type: "load", modelUrl, ortUrl, threads: defaultThreads() }), failed]);
  info = ready.info;
  element("loading").hidden = true;
  const threadNote = ready.threads > 1 ? `${ready.threads} threads` : "1 thread";
  const isolation = ready.crossOriginIsolated
    ? ""
    : " (this page is not cross-origin isolated: its host sends no COOP/COEP headers, so wasm runs one thread)";
  element("backend").textContent =
    `onnxruntime-web ${ready.ortVersion}, ${ready.backend} backend, ${threadNote}${isolation}; ` +
    `model ${info.modelVersion} (latent ${info.latentDim}, digits 0-${info.numClasses - 1}), ` +
    `loaded in ${Math.round(ready.loadMs)} ms`;
  makeDigitButtons();
  element("download").disabled = false;
  return ready;
}

function makeDigitButtons() {
  const group = element("digit-buttons");
  for (let digit = 0; digit < info.numClasses; digit++) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = String(digit);
    button.dataset.digit = String(digit);
    button.setAttribute("aria-pressed", "false");
    button.addEventListener("click", () => drawDigits(digit));
    group.append(button);
  }
}

function readStyle() {
  const style = Number(element("style").value);
  if (!Number.isSafeInteger(style) || style < 0) {
    throw new Error(`a style is a whole number from 0 to ${Number.MAX_SAFE_INTEGER}`);
  }
  return style;
}

function readCount() {
  const count = Number(element("count").value);
  if (!Number.isInteger(count) || count < 1 || count > MAX_COUNT) {
    throw new Error(`how many: a whole number from 1 to ${MAX_COUNT}`);
  }
  return count;
}

/** Runs one drawing after the ones before it, showing its error rather than throwing; resolves to
 * the job's result or {error}. */
function queue(job) {
  const result = drawing.then(async () => {
    clearError();
    try {
      return await job();
    } catch (error) {
      showError(error.message);
      return { error: error.message };
    }
  });
  drawing = result;
  return result;
}

function drawDigits(digit, count = undefined, style = undefined) {
  return queue(async () => {
    count ??= readCount();
    style ??= readStyle();
    const labels = Array(count).fill(digit);
    const { images, ms } = await ask({ type: "draw", seed: style, labels, sameHand: false });
    for (const button of element("digit-buttons").children) {
      button.setAttribute("aria-pressed", String(button.dataset.digit === String(digit)));
    }
    show({ ...tile(images, count, info.imageSize), name: `digits_${digit}.png` });
    element("caption").textContent = `${count} × ${digit}, seed ${style}: ${ms.toFixed(1)} ms`;
    return { ms, width: picture.width, height: picture.height };
  });
}

function drawText(text = undefined, style = undefined) {
  return queue(async () => {
    text ??= element("text").value;
    style ??= readStyle();
    const digits = parseText(text, info.numClasses);
    const labels = digits.filter((digit) => digit !== null);
    const { images, ms } = await ask({ type: "draw", seed: style, labels, sameHand: true });
    const name = `text_${text.trim().replace(/\s+/g, "_") || "blank"}.png`;
    show({ ...textRow(images, digits, info.imageSize), name });
    element("caption").textContent = `"${text}" in style ${style}: ${ms.toFixed(1)} ms`;
    return { ms, width: picture.width, height: picture.height };
  });
}

let redraw = () => drawText();

function show(drawn) {
  picture = drawn;
  paint();
  drawnCount++;
  if (drawnCount === 1) window.cganPage.firstDrawMs = performance.now(); // since navigation started
  document.body.dataset.drawn = String(drawnCount);
}

function shown() {
  return element("invert").checked ? inverted(picture) : picture;
}

function paint() {
  if (!picture) return;
  const { width, height, pixels } = shown();
  const canvas = element("picture");
  canvas.width = width;
  canvas.height = height;
  canvas.style.width = `${width * ZOOM}px`;
  const rgba = new ImageData(width, height);
  pixels.forEach((value, index) => {
    rgba.data.set([value, value, value, 255], index * 4);
  });
  canvas.getContext("2d").putImageData(rgba, 0, 0);
}

function download() {
  if (!picture) return;
  element("picture").toBlob((blob) => {
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = picture.name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }, "image/png");
}

function wireControls() {
  element("controls").addEventListener("submit", (event) => event.preventDefault());
  element("write").addEventListener("click", () => {
    redraw = () => drawText();
    redraw();
  });
  element("text").addEventListener("keydown", (event) => {
    if (event.key === "Enter") element("write").click();
  });
  element("new-hand").addEventListener("click", () => {
    element("style").value = String(Math.floor(Math.random() * MAX_RANDOM_STYLE));
    redraw();
  });
  element("style").addEventListener("change", () => redraw());
  element("invert").addEventListener("change", paint);
  element("download").addEventListener("click", download);
  element("digit-buttons").addEventListener("click", (event) => {
    const digit = event.target.dataset?.digit;
    if (digit !== undefined) redraw = () => drawDigits(Number(digit));
  });
}

const ready = start();
window.cganPage = {
  ready,
  drawDigits,
  drawText,
  // Settles once every drawing asked for so far is on the canvas (or has shown its error).
  idle: () => drawing.then(() => undefined),
  // Fixed noise (numbers, [N * latentDim]) and labels through the page's model: {output, images}.
  generate: (noise, labels) => ask({ type: "generate", noise, labels }),
  // What the canvas shows: {width, height, pixels (grey levels)}.
  picture: () => {
    const canvas = element("picture");
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    const grey = Array.from({ length: data.length / 4 }, (_, index) => data[index * 4]);
    return { width: canvas.width, height: canvas.height, pixels: grey };
  },
};
wireControls();
ready.then(() => drawText()).catch((error) => showError(error.message));
