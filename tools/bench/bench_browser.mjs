// The browser half of tools/bench/bench.mjs: the built app in headless Chromium (tools/app/browser.mjs, as
// the e2e tests run it), measured from inside the page so no automation round trip is counted:
//   cold start (empty profile) and warm start (cached) until the worker reports ready, bytes served;
//   end-to-end from a File to the verdict and heatmap on screen (for a whole radiograph: finding its knees
//   and drawing their boxes over the whole picture too), with the worker's own breakdown
//   (prepare / inference / views) from the same run;
//   preprocessing with the C++ core in WASM against the canvas + JavaScript loop the ORT Web samples use;
//   peak memory of the renderer process that hosts the page, its worker and ONNX Runtime's threads;
//   batch throughput through the page's own file input.

import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { launchBrowser, rendererMemory, serveApp, SLOW_MS } from '../app/browser.mjs';

/**
 * Installed before the app's scripts: records the worker's 'ready' and 'reply' messages (by wrapping the
 * Worker constructor the page uses) and when the file input changes, all on the page's clock.
 */
function instrumentPage() {
  const bench = { ready: null, lastReply: null, inputChangedAt: null, files: {} };
  window.oacBench = bench;
  const PageWorker = window.Worker;
  window.Worker = class extends PageWorker {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', ({ data }) => {
        if (data?.type === 'ready') {
          // The worker's steps on the page's clock: milliseconds since navigation.
          const shift = data.timeOrigin - performance.timeOrigin;
          const stages = Object.fromEntries(Object.entries(data.stages ?? {}).map(([name, at]) => [name, at + shift]));
          bench.ready = { at: performance.now(), fromCache: data.fromCache, device: data.device, stages };
        }
        if (data?.type === 'reply' && data.summary) {
          bench.lastReply = { timings: data.timings, workerMs: data.milliseconds, knees: data.summary.knees?.length ?? 0 };
        }
      });
    }
  };
  document.addEventListener('change', (event) => {
    if (event.target?.id === 'file-input') bench.inputChangedAt = performance.now();
  }, true);
}

/** Milliseconds from navigation start until the worker reported ready (or the error it reported). */
async function startTime(page) {
  await page.waitForFunction(() => window.oacBench?.ready || document.body.dataset.modelReady === 'false', null,
    { timeout: SLOW_MS });
  const ready = await page.evaluate(() => window.oacBench.ready);
  if (!ready) throw new Error(`the app did not become ready: ${await page.textContent('#model-status')}`);
  return ready;
}

/** Drops the File `name` on the page and resolves when its verdict and heatmap are drawn. */
function classifyInPage(name) {
  const bench = window.oacBench;
  const status = document.querySelector('#status');
  bench.lastReply = null;
  return new Promise((resolve) => {
    let started = 0;
    // The page paints the crop and heatmap canvases, then announces the result in #status.
    const observer = new MutationObserver(() => {
      if (!bench.lastReply || /^(Checking|Waiting)/.test(status.textContent)) return;
      observer.disconnect();
      resolve({ endToEnd: performance.now() - started, ...bench.lastReply, status: status.textContent });
    });
    observer.observe(status, { childList: true, characterData: true, subtree: true });
    const transfer = new DataTransfer();
    transfer.items.add(bench.files[name]);
    started = performance.now();
    document.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  });
}

/** The C++ core (decode → canonical crop → tensor) against canvas decode + resize + a JS normalisation loop. */
async function comparePreprocessing({ names, warmup, repeats }) {
  const { default: createCoreModule } = await import(new URL('core/oac_core.mjs', document.baseURI).href);
  const cardText = await (await fetch('model/card.json')).text();
  const { preprocess } = JSON.parse(cardText);
  const size = preprocess.input_size;
  const coreModule = await createCoreModule();
  const core = new coreModule.Core(cardText);

  const withCore = async (file) => {
    const prepared = core.prepare(new Uint8Array(await file.arrayBuffer()));
    if (!prepared.ok) throw new Error(prepared.error);
    return Array.from(prepared.knees, (knee, i) => core.tensor(i).slice());
  };
  const withCanvas = async (file) => {
    const bitmap = await createImageBitmap(file);
    const side = Math.min(bitmap.width, bitmap.height);
    const context = new OffscreenCanvas(size, size).getContext('2d', { willReadFrequently: true });
    context.drawImage(bitmap, (bitmap.width - side) / 2, (bitmap.height - side) / 2, side, side, 0, 0, size, size);
    bitmap.close();
    const rgba = context.getImageData(0, 0, size, size).data;
    const plane = size * size;
    const tensor = new Float32Array(3 * plane);
    for (let i = 0; i < plane; i += 1) {
      for (let c = 0; c < 3; c += 1) tensor[c * plane + i] = (rgba[i * 4 + c] / 255 - preprocess.mean[c]) / preprocess.std[c];
    }
    return [tensor];
  };

  const results = {};
  for (const name of names) {
    const file = window.oacBench.files[name];
    const times = { core: [], javascript: [] };
    for (let run = 0; run < warmup + repeats; run += 1) {
      for (const [method, prepare] of [['core', withCore], ['javascript', withCanvas]]) {
        const started = performance.now();
        await prepare(file);
        if (run >= warmup) times[method].push(performance.now() - started);
      }
    }
    results[name] = times;
  }
  core.delete();
  return results;
}

function waitForBatch(count) {
  const status = document.querySelector('#status');
  return new Promise((resolve) => {
    const observer = new MutationObserver(() => {
      if (!status.textContent.startsWith(`Checked ${count} files`)) return;
      observer.disconnect();
      resolve({ seconds: (performance.now() - window.oacBench.inputChangedAt) / 1000, status: status.textContent });
    });
    observer.observe(status, { childList: true, characterData: true, subtree: true });
  });
}

/** Bytes the server sent for these requests (files that exist under root), and those of the model alone. */
async function servedBytes(requests, root, prefix, modelFile) {
  let total = 0;
  let model = 0;
  for (const request of requests) {
    if (request.method !== 'GET') continue;
    let relative = decodeURIComponent(new URL(request.path, 'http://host').pathname).slice(prefix.length);
    if (relative === '' || relative.endsWith('/')) relative += 'index.html';
    const info = await stat(path.join(root, relative)).catch(() => null);
    if (!info?.isFile()) continue;
    total += info.size;
    if (relative === `model/${modelFile}`) model += info.size;
  }
  return { total, model };
}

/** Renderer memory of the app whose model never arrives: the page, worker and core without ONNX Runtime. */
async function baselineMemory(url) {
  const browser = await launchBrowser();
  try {
    await browser.context.route('**/*.onnx', (route) => route.abort());
    await browser.page.goto(url);
    await browser.page.waitForSelector('body[data-model-ready="false"]', { timeout: SLOW_MS });
    return (await rendererMemory())[0] ?? null;
  } finally {
    await browser.close();
  }
}

/**
 * Measures the app built in `dist`. images: { label: file } for end-to-end and preprocessing;
 * batchFiles: paths for the throughput run. Returns the raw measurements (bench.mjs summarises).
 */
function mediaType(file) {
  if (/\.jpe?g$/i.test(file)) return 'image/jpeg';
  return /\.dcm$/i.test(file) ? 'application/dicom' : 'image/png';
}

export async function measureApp({ dist, modelFile, modelBytes, images, films = {}, batchFiles, warmup, repeats, warmStarts,
  log }) {
  const server = await serveApp({ root: dist });
  const prefix = new URL(server.url).pathname;
  try {
    log('browser: memory baseline (model blocked)');
    const baseline = await baselineMemory(server.url);
    const browser = await launchBrowser();
    try {
      const { context, page } = browser;
      await context.addInitScript(instrumentPage);

      log('browser: cold start');
      await page.goto(server.url);
      const cold = await startTime(page);
      const coldBytes = await servedBytes(server.requests.splice(0), dist, prefix, modelFile);
      const warm = [];
      let warmBytes = { total: 0, model: 0 };
      for (let i = 0; i < warmStarts; i += 1) {
        log(`browser: warm start ${i + 1}/${warmStarts}`);
        await page.reload();
        warm.push(await startTime(page));
        const served = await servedBytes(server.requests.splice(0), dist, prefix, modelFile);
        warmBytes = { total: warmBytes.total + served.total, model: warmBytes.model + served.model };
      }

      // Films (DICOM) are measured end to end only: the JavaScript preprocessing baseline reads what a canvas does.
      const inputs = { ...images, ...films };
      for (const [label, file] of Object.entries(inputs)) {
        const base64 = (await readFile(file)).toString('base64');
        await page.evaluate(({ name, data, fileName, type }) => {
          const bytes = Uint8Array.from(atob(data), (char) => char.charCodeAt(0));
          window.oacBench.files[name] = new File([bytes], fileName, { type });
        }, { name: label, data: base64, fileName: path.basename(file), type: mediaType(file) });
      }
      const endToEnd = {};
      for (const label of Object.keys(inputs)) {
        log(`browser: end to end, ${label}`);
        const runs = [];
        for (let run = 0; run < warmup + repeats; run += 1) {
          const result = await page.evaluate(classifyInPage, label);
          if (!/chance of osteoarthritis|does not look like a knee/.test(result.status)) {
            throw new Error(`${label} was not classified in the page: ${result.status}`);
          }
          if (run >= warmup) runs.push(result);
        }
        endToEnd[label] = runs;
      }
      // Before the page itself decodes images for the preprocessing comparison and the batch table.
      const [rendererAfterClassifying] = await rendererMemory();

      log('browser: preprocessing, C++ core vs JavaScript');
      const preprocessing = await page.evaluate(comparePreprocessing, { names: Object.keys(images), warmup, repeats });

      log(`browser: batch of ${batchFiles.length} files`);
      const batchDone = page.evaluate(waitForBatch, batchFiles.length);
      await page.setInputFiles('#file-input', batchFiles);
      const batch = await batchDone;
      if (!new RegExp(`^Checked ${batchFiles.length} files: ${batchFiles.length} classified`).test(batch.status)) {
        throw new Error(`the batch run did not classify every file: ${batch.status}`);
      }

      const [rendererAtEnd] = await rendererMemory();
      return {
        start: {
          coldMs: cold.at, warmMs: warm.map((entry) => entry.at), device: cold.device, coldBytes, warmBytes,
          coldStages: cold.stages, warmStages: warm.map((entry) => entry.stages),
          userAgent: await page.evaluate(() => navigator.userAgent),
        },
        endToEnd,
        preprocessing,
        batch: { files: batchFiles.length, seconds: batch.seconds, imagesPerSecond: batchFiles.length / batch.seconds },
        memory: { renderer: rendererAfterClassifying, rendererAtEnd, baseline, modelBytes },
      };
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}

