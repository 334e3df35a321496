// make web: the page as a static site in web/dist/ (or --out DIR; --model FILE instead of the bundled model), for cgan-serve or any host: the page's files,
// onnxruntime-web's wasm build from node_modules (no CDN at run time), and the bundled model.
// Built beside dist/ and renamed into place, so that a failed build leaves the last one whole.

import {
  chmodSync,
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, resolve } from "node:path";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const web = dirname(fileURLToPath(import.meta.url));
const options = parsedOptions();
const model = resolve(options.model);
const target = resolve(options.out);
const ortDist = join(web, "node_modules", "onnxruntime-web", "dist");
// The wasm entry point and the one glue and binary pair it loads (the CPU-only, SIMD, threaded build).
const ORT_FILES = ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"];
// Hosts that read a _headers file (Netlify, Cloudflare Pages) send these; without them wasm runs one
// thread. cgan-serve sends them itself.
const HEADERS = `/*
  Cross-Origin-Opener-Policy: same-origin
  Cross-Origin-Embedder-Policy: require-corp
`;

// A gzip twin of every file worth compressing (the wasm: 15 MB, 4 MB as gzip), for servers that send
// one to a client that takes it (cgan-serve, nginx's gzip_static).
const GZIP_FROM_BYTES = 1024;

function addGzipTwins(folder) {
  for (const name of readdirSync(folder)) {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) addGzipTwins(path);
    else if (statSync(path).size >= GZIP_FROM_BYTES) writeFileSync(`${path}.gz`, gzipSync(readFileSync(path), { level: 9 }));
  }
}

function fail(message) {
  console.error(`make web: ${message}`);
  process.exit(1);
}

function parsedOptions() {
  try {
    return parseArgs({
      options: {
        out: { type: "string", default: join(web, "dist") },
        model: { type: "string", default: join(web, "..", "cgan_runtime", "models", "cgan_generator.onnx") },
      },
    }).values;
  } catch (error) {
    fail(`${error.message} (options: --out DIR, --model FILE)`);
  }
}

if (!existsSync(ortDist)) fail("onnxruntime-web is not installed: run npm ci in web/ first");
if (!existsSync(model)) fail(`no model at ${model}`);

const building = mkdtempSync(join(dirname(target), ".building-"));
chmodSync(building, 0o755); // mkdtemp makes it private; a site is read by its server
try {
  cpSync(join(web, "src"), building, { recursive: true });
  for (const file of ORT_FILES) cpSync(join(ortDist, file), join(building, "ort", file));
  cpSync(model, join(building, "model", "cgan_generator.onnx"));
  writeFileSync(join(building, "_headers"), HEADERS);
  addGzipTwins(building);
  rmSync(target, { recursive: true, force: true });
  renameSync(building, target);
} catch (error) {
  rmSync(building, { recursive: true, force: true });
  fail(error.message);
}
console.log(target);
