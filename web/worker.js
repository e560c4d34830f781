// The engine thread. Everything heavy happens here so the page never blocks: fetching, verifying
// and caching the model, decoding images with the WASM core, and running ONNX Runtime Web. The messages it
// takes and sends are declared in protocol.js.

import * as ort from './ort/ort.wasm.min.mjs';
import createCoreModule from './core/oac_core.mjs';
import { KneeClassifier, failedFileResult, squareBox, startRuntime } from './engine.js';
import { FrameDecoders, codecModuleOptions, distFiles } from './codecs/frame_decoders.js';
import { megabytes } from './measures.js';
import { SelfTestError } from './model_contract.js';
import { EVENTS, LOAD, REQUESTS } from './protocol.js';

// The worker owns this cache; the service worker leaves it alone (its caches are "oac-shell-*").
const MODEL_CACHE = 'oac-model';
const CARD_URL = new URL('model/card.json', self.location.href).href;
const PROGRESS_INTERVAL_MS = 100;
// Smallest module using a v128 constant: validates only where WebAssembly SIMD is supported.
const SIMD_PROBE = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20,
  0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11]);

const threads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
// ORT's .mjs/.wasm come from this app's own folder, never from a CDN.
ort.env.wasm.wasmPaths = new URL('ort/', self.location.href).href;
ort.env.wasm.numThreads = threads;
// This is already a worker; ORT's own proxy worker would only add a hop.
ort.env.wasm.proxy = false;

function post(type, payload = {}, transfer = []) {
  self.postMessage({ type, ...payload }, transfer);
}

function describeDevice() {
  return {
    isolated: self.crossOriginIsolated === true,
    threads: ort.env.wasm.numThreads,
    hardwareConcurrency: navigator.hardwareConcurrency || 1,
    simd: WebAssembly.validate(SIMD_PROBE),
  };
}

class UserFacingError extends Error {}

/** The runtime in words, for the self-test's failure message. */
function describeRuntime() {
  const device = describeDevice();
  return `onnxruntime-web ${ort.env.versions?.web ?? ''} (WebAssembly${device.simd ? ' SIMD' : ''}, `
    + `${device.threads} thread${device.threads === 1 ? '' : 's'}) in ${navigator.userAgent}`;
}

/**
 * Keeps a codec's files in the service worker's shell cache, which serves them offline. The service worker stores
 * what it fetches for a worker it controls; a worker started before it took control (a first visit) stores its own.
 */
async function keepOffline(urls) {
  const shells = (await caches.keys()).filter((name) => name.startsWith('oac-shell-'));
  await Promise.all(shells.map(async (name) => {
    const cache = await caches.open(name);
    await Promise.all(urls.map(async (url) => { if (!(await cache.match(url))) await cache.add(url); }));
  }));
}

/** A DICOM codec from this app's codecs/ folder, fetched the first time a file needs it. */
async function loadCodec(codecName) {
  const files = distFiles(codecName);
  const url = (file) => new URL(`codecs/${file}`, self.location.href).href;
  // Storing is a courtesy for offline use: a full or unavailable cache must not stop the decoding.
  keepOffline([files.script, files.wasm].filter(Boolean).map(url)).catch(() => {});
  const codecModule = await import(url(files.script));
  if (!files.wasm) return codecModule;
  const response = await fetch(url(files.wasm));
  if (!response.ok) throw new Error(`${files.wasm}: HTTP ${response.status}`);
  return codecModule.default(codecModuleOptions(await response.arrayBuffer()));
}

async function fetchCard() {
  let response;
  try {
    response = await fetch(CARD_URL);
  } catch {
    throw new UserFacingError('The model description could not be loaded: this device is offline and the app is '
      + 'not stored on it yet. Connect once to set it up.');
  }
  if (!response.ok) throw new UserFacingError(`The model description could not be loaded (HTTP ${response.status}).`);
  const cardText = await response.text();
  let card;
  try {
    card = JSON.parse(cardText);
  } catch {
    throw new UserFacingError('The model description is damaged (not valid JSON).');
  }
  if (!card.model_file || !/^[0-9a-f]{64}$/.test(card.sha256 ?? '') || !Number.isFinite(card.bytes)) {
    throw new UserFacingError('The model description lacks the model file, its size or its checksum.');
  }
  return { card, cardText };
}

async function sha256Hex(bytes) {
  if (!self.crypto?.subtle) {
    throw new UserFacingError('The model cannot be verified because this page is not served securely '
      + '(HTTPS or localhost is required).');
  }
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Streams the model, reporting byte-level progress. */
async function downloadModel(url, expectedBytes) {
  let response;
  try {
    // no-store: Cache Storage keeps the verified copy; the HTTP cache would hold a second one.
    response = await fetch(url, { cache: 'no-store' });
  } catch {
    throw new UserFacingError(`The model (${megabytes(expectedBytes)}) is not on this device yet and there is no `
      + 'network connection. Connect once to download it.');
  }
  if (!response.ok) throw new UserFacingError(`The model could not be downloaded (HTTP ${response.status}).`);
  const bytes = new Uint8Array(expectedBytes);
  let received = 0;
  let lastReport = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length > expectedBytes) {
      await reader.cancel();
      throw new UserFacingError('The downloaded model is larger than its description says, so it is corrupted or '
        + 'the wrong file. It was not used.');
    }
    bytes.set(value, received);
    received += value.length;
    const now = performance.now();
    if (now - lastReport >= PROGRESS_INTERVAL_MS) {
      lastReport = now;
      post(EVENTS.MODEL_PROGRESS, { loaded: received, total: expectedBytes });
    }
  }
  post(EVENTS.MODEL_PROGRESS, { loaded: received, total: expectedBytes });
  if (received !== expectedBytes) {
    throw new UserFacingError(`The model download was cut short (${megabytes(received)} of `
      + `${megabytes(expectedBytes)}). Try again.`);
  }
  return bytes;
}

/** The verified model bytes: from Cache Storage when a good copy is there, else downloaded. */
async function loadModelBytes(card) {
  const url = new URL(`model/${card.model_file}`, self.location.href).href;
  // The checksum in the key means a new model version never reuses an old entry.
  const cacheKey = `${url}?sha256=${card.sha256}`;
  const cache = self.caches ? await caches.open(MODEL_CACHE) : null;
  const cached = await cache?.match(cacheKey);
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    if ((await sha256Hex(bytes)) === card.sha256) return { bytes, fromCache: true };
    await cache.delete(cacheKey);
    post(EVENTS.MODEL_STATUS, { message: 'The stored copy of the model was damaged; downloading it again.' });
  }
  post(EVENTS.MODEL_STATUS, { message: `Downloading the model (${megabytes(card.bytes)}); this happens once.` });
  const bytes = await downloadModel(url, card.bytes);
  if ((await sha256Hex(bytes)) !== card.sha256) {
    throw new UserFacingError('The downloaded model is corrupted: its checksum does not match the model '
      + 'description. It was not used. Try again later, or tell whoever runs this site.');
  }
  let storedNote = '';
  if (cache) {
    try {
      await cache.put(cacheKey, new Response(bytes, { headers: { 'Content-Type': 'application/octet-stream' } }));
      for (const request of await cache.keys()) {
        if (request.url !== cacheKey) await cache.delete(request);
      }
    } catch {
      storedNote = 'There was no room to keep the model on this device; it will download again next time.';
    }
  }
  return { bytes, fromCache: false, storedNote };
}

/** The image core (Emscripten module), started once; also asked about a file's size before the page reads it. */
let corePromise = null;
function core() {
  corePromise ??= createCoreModule().catch((error) => {
    corePromise = null;
    throw new UserFacingError(`The image decoder could not start (${error.message ?? error}).`);
  });
  return corePromise;
}

async function loadClassifier() {
  // When each step was done, on this worker's clock: the bench reads where a start spends its time.
  const stages = { start: performance.now() };
  const done = (stage) => (value) => {
    stages[stage] = performance.now();
    return value;
  };
  // ONNX Runtime starts beside the card and the model's download; should it fail, the model's own session
  // fails the same way and says so.
  const runtime = startRuntime(ort, ['wasm']).catch(() => {}).then(done('runtime'));
  const { card, cardText } = await fetchCard().then(done('card'));
  post(EVENTS.CARD, { card });
  const [coreModule, model] = await Promise.all([core().then(done('core')), loadModelBytes(card).then(done('model'))]);
  post(EVENTS.MODEL_STATUS, { message: 'Preparing the model…' });
  await runtime;
  // create() runs the card's known-answer self-test too: a device that computes the model otherwise scores nothing.
  const classifier = await KneeClassifier.create({
    ort, coreModule, cardText, modelBytes: model.bytes, executionProviders: ['wasm'], runtimeDescription: describeRuntime(),
    frameDecoders: new FrameDecoders(loadCodec),
  }).catch((error) => {
    if (error instanceof SelfTestError) throw new UserFacingError(`${error.message[0].toUpperCase()}${error.message.slice(1)}.`);
    throw error;
  }).then(done('session'));
  post(EVENTS.READY, {
    fromCache: model.fromCache,
    storedNote: model.storedNote ?? '',
    seconds: (stages.session - stages.start) / 1000,
    device: describeDevice(),
    stages,
    timeOrigin: performance.timeOrigin,
    maxFileBytes: coreModule.maxFileBytes(),
    selfTest: classifier.selfTest,
  });
  return classifier;
}

let classifierPromise = null;
function classifier() {
  if (!classifierPromise) {
    classifierPromise = loadClassifier();
    classifierPromise.catch((error) => {
      // A later request may retry, e.g. after the network comes back.
      classifierPromise = null;
      const message = error instanceof UserFacingError ? error.message : `The model could not be loaded: ${error.message}`;
      post(EVENTS.MODEL_ERROR, { message });
    });
  }
  return classifierPromise;
}

// Classify requests handled since the worker started (a file opened again after its views were dropped counts twice).
let filesChecked = 0;
// The page's id of the file whose image the core holds now (null: none, or one that could not be read).
let preparedFileId = null;
// The page's views fit 512 px (its largest heatmap on a high-density screen); the whole image 1024 px.
const VIEW_MAX_SIDE = 512;
const OVERVIEW_MAX_SIDE = 1024;
const MODEL_MISSING = 'the model is not available (see the Model section)';

/** A knee's crop and heatmap as the page paints them, and the buffers to transfer. */
function transferableView(view) {
  const image = {
    ...view,
    cropRgba: new Uint8ClampedArray(view.cropRgba.buffer),
    camRgba: new Uint8ClampedArray(view.camRgba.buffer),
  };
  return { image, transfer: [image.cropRgba.buffer, image.camRgba.buffer] };
}

async function classify({ fileId = null, name, buffer, boxes = [] }) {
  let engine;
  try {
    engine = await classifier();
  } catch {
    return { summary: failedFileResult(name, MODEL_MISSING) };
  }
  filesChecked += 1;
  const started = performance.now();
  preparedFileId = null;
  const { summary, image = null, overview = null, views = [], timings } = await engine.classifyImage(
    name, new Uint8Array(buffer), { viewMaxSide: VIEW_MAX_SIDE, overviewMaxSide: OVERVIEW_MAX_SIDE, boxes });
  if (summary.ok) preparedFileId = fileId;
  const milliseconds = performance.now() - started;
  const images = views.map(transferableView);
  return {
    summary,
    image,
    overview,
    views: images.map((view) => view.image),
    milliseconds,
    timings,
    transfer: [...images.flatMap((view) => view.transfer), ...(overview ? [overview.grey.buffer] : [])],
  };
}

async function setBox({ fileId = null, buffer, index, box, boxes = [] }) {
  let engine;
  try {
    engine = await classifier();
  } catch {
    return { error: MODEL_MISSING };
  }
  if (!Number.isInteger(index) || index < 0 || !Array.isArray(box) || box.length !== 4) {
    return { error: 'the knee or its box was not given' };
  }
  const started = performance.now();
  if (fileId === null || fileId !== preparedFileId) {
    // The core holds another image now: this file again, with the boxes set on it before (so that knees
    // added by hand keep their places; this knee's old box is replaced below).
    if (!buffer) return { error: 'the image is needed again to set this box' };
    preparedFileId = null;
    const prepared = await engine.prepareWithBoxes(new Uint8Array(buffer), boxes);
    if (!prepared.ok) return { error: prepared.error };
    preparedFileId = fileId;
  }
  const outcome = await engine.rescoreKnee(index, box, { viewMaxSide: VIEW_MAX_SIDE });
  if (!outcome.ok) return { error: outcome.error };
  const { image, transfer } = transferableView(outcome.view);
  return { knee: outcome.knee, view: image, milliseconds: performance.now() - started, timings: outcome.timings, transfer };
}

/**
 * For diagnosing memory over a long session: how many files this worker has checked and the size of the image
 * core's WebAssembly heap (null until the model has loaded). ONNX Runtime keeps its own heap private.
 */
async function stats() {
  const engine = await classifierPromise?.catch(() => null);
  return { filesChecked, coreHeapBytes: engine?.coreHeapBytes() ?? null };
}

/** The core's own sentence about a file of `bytes` bytes ("The file is too large (…)."), or '' when it may be read. */
async function fileSize({ bytes }) {
  return { problem: (await core()).fileSizeProblem(bytes) };
}

/** A DICOM file's header facts, by which a folder is sorted (web/dicom_folder.js). */
async function describe({ buffer }) {
  return { described: (await core()).describeDicom(new Uint8Array(buffer)) };
}

/** The files a DICOMDIR lists, by which a folder is sorted when it has one (web/dicom_folder.js). */
async function directory({ buffer }) {
  return { directory: (await core()).readDicomdir(new Uint8Array(buffer)) };
}

/** The square the core will crop for a box a person is moving (engine.js squareBox), for the page to draw. */
async function squareProposedBox({ box, width, height }) {
  if (!Array.isArray(box) || box.length !== 4) return { error: 'the box was not given' };
  const squared = squareBox(await core(), box, width, height);
  return squared.ok ? { box: squared.box } : { error: squared.error };
}

async function clearModel() {
  const removed = self.caches ? await caches.delete(MODEL_CACHE) : false;
  return { removed };
}

// One job at a time: the core keeps per-image state between prepare() and views().
let queue = Promise.resolve();
function enqueue(job) {
  const run = queue.then(job);
  queue = run.catch(() => {});
  return run;
}

const QUEUED_HANDLERS = {
  [REQUESTS.CLASSIFY]: classify,
  [REQUESTS.SET_BOX]: setBox,
  [REQUESTS.CLEAR_MODEL]: clearModel,
  [REQUESTS.STATS]: stats,
  [REQUESTS.FILE_SIZE]: fileSize,
  [REQUESTS.DESCRIBE]: describe,
  [REQUESTS.DIRECTORY]: directory,
};
// A box being moved is squared while the pointer moves: it touches no image the core holds, so it need not wait
// for a file being classified.
const IMMEDIATE_HANDLERS = { [REQUESTS.SQUARE_BOX]: squareProposedBox };

function answer(message, work) {
  work.then(({ transfer = [], ...reply }) => {
    post(EVENTS.REPLY, { requestId: message.requestId, ...reply }, transfer);
  }, (error) => {
    post(EVENTS.REPLY, { requestId: message.requestId, error: error.message ?? String(error) });
  });
}

self.addEventListener('message', (event) => {
  const message = event.data;
  if (message.type === LOAD) {
    classifier().catch(() => {});
  } else if (IMMEDIATE_HANDLERS[message.type]) {
    answer(message, IMMEDIATE_HANDLERS[message.type](message));
  } else if (QUEUED_HANDLERS[message.type]) {
    answer(message, enqueue(() => QUEUED_HANDLERS[message.type](message)));
  }
});

post(EVENTS.ABOUT, { device: describeDevice() });
