// The model, off the page's thread: loads onnxruntime-web (its wasm backend, the files served beside
// the page) and the model, then draws what the page asks for. Messages in: load, draw, generate;
// out: progress, ready, images, error.

import * as ort from "./ort/ort.wasm.min.mjs";
import { noiseRows } from "./noise.js";
import { modelInfo, readMetadata } from "./onnx_metadata.js";
import { toUint8 } from "./pictures.js";

const WASM_FILE = "ort-wasm-simd-threaded.wasm";
let session = null;
let info = null;

/** The bytes at url, telling the page how far the download is. */
async function download(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new Error(`the ${what} (${url}) could not be fetched: ${error.message}`);
  }
  if (!response.ok) throw new Error(`the ${what} (${url}) answered HTTP ${response.status}`);
  const total = Number(response.headers.get("Content-Length")) || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    postMessage({ type: "progress", what, loaded, total });
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

async function load({ modelUrl, ortUrl, threads }) {
  const started = performance.now();
  ort.env.logLevel = "error";
  ort.env.wasm.wasmPaths = ortUrl;
  ort.env.wasm.numThreads = threads;
  const [wasm, model] = await Promise.all([
    download(ortUrl + WASM_FILE, "onnxruntime-web wasm"),
    download(modelUrl, "model"),
  ]);
  ort.env.wasm.wasmBinary = wasm;
  try {
    info = modelInfo(readMetadata(model));
  } catch (error) {
    throw new Error(`the model (${modelUrl}) is not a cgan generator: ${error.message}`);
  }
  try {
    session = await ort.InferenceSession.create(model, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
  } catch (error) {
    throw new Error(`onnxruntime-web could not load the model (${modelUrl}): ${firstLine(error)}`);
  }
  checkInterface(session, info);
  return {
    info,
    backend: "wasm",
    // onnxruntime-web sets numThreads back to 1 where threads cannot run (no cross-origin isolation).
    threads: ort.env.wasm.numThreads,
    crossOriginIsolated: self.crossOriginIsolated,
    ortVersion: ort.env.versions.web,
    loadMs: performance.now() - started,
  };
}

function checkInterface(session, info) {
  const names = [...session.inputNames, ...session.outputNames].sort().join(", ");
  if (names !== "images, labels, z") {
    throw new Error(`the model has inputs and outputs ${names}, not z, labels and images: not a cgan generator`);
  }
}

function firstLine(error) {
  return String(error?.message ?? error).split("\n")[0];
}

/** Raw output (Float32Array [N * size * size]) of noise (Float32Array [N * latentDim]) and labels. */
async function run(noise, labels) {
  for (const label of labels) {
    if (!Number.isInteger(label) || label < 0 || label >= info.numClasses) {
      throw new Error(`digits must be in 0-${info.numClasses - 1}, got ${label}`);
    }
  }
  const count = labels.length;
  const feeds = {
    z: new ort.Tensor("float32", noise, [count, info.latentDim]),
    labels: new ort.Tensor("int64", BigInt64Array.from(labels, BigInt), [count]),
  };
  const { images } = await session.run(feeds);
  return images.data;
}

/** Images (uint8) of labels: the noise of images 0, 1, ... of seed, or with sameHand the first one
 * (style seed's) for every label, as cgan-run --digit and --text draw them. */
async function draw({ seed, labels, sameHand }) {
  const rows = noiseRows(seed, 0, sameHand ? 1 : labels.length, info.latentDim);
  const noise = sameHand ? new Float32Array(labels.length * info.latentDim) : rows;
  if (sameHand) labels.forEach((_, index) => noise.set(rows, index * info.latentDim));
  return toUint8(await run(noise, labels), info.outputRange);
}

const handlers = {
  load,
  async draw(message) {
    const started = performance.now();
    const images = message.labels.length ? await draw(message) : new Uint8Array(0);
    return { images, ms: performance.now() - started };
  },
  // The test hook: fixed noise in, the raw output and its pixels back.
  async generate({ noise, labels }) {
    const output = await run(Float32Array.from(noise), labels);
    return { output, images: toUint8(output, info.outputRange) };
  },
};

onmessage = async ({ data }) => {
  try {
    const result = await handlers[data.type](data);
    postMessage({ type: "done", id: data.id, ...result });
  } catch (error) {
    postMessage({ type: "error", id: data.id, message: firstLine(error) });
  }
};
