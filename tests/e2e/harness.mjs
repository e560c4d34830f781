// Shared set-up for the web app's end-to-end tests: the built app served and a fresh headless Chromium
// (tools/app/browser.mjs, shared with the benchmark), the CLI, and sample X-rays from the shared datasets
// (tools/lib/datasets.mjs).

import { spawn } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CHROMIUM, DIST, SLOW_MS, launchBrowser, serveApp } from '../../tools/app/browser.mjs';
import { SAMPLES, SEED_DATASET_DIR } from '../../tools/lib/datasets.mjs';
import { REPO_ROOT } from '../../tools/lib/paths.mjs';

export { APP_PREFIX, CHROMIUM, DIST, SLOW_MS, launchBrowser, rendererMemory, serveApp } from '../../tools/app/browser.mjs';
export { SAMPLES, WHOLE_RADIOGRAPH, parseCsvLine } from '../../tools/lib/datasets.mjs';
export { DATASETS, REPO_ROOT } from '../../tools/lib/paths.mjs';
export { greyPng } from '../../tools/lib/png.mjs';

export const TEST_OUTPUT = path.join(REPO_ROOT, 'build', 'test-output');
// Debian's Python with PIL, for the tools that write test inputs (ctest passes its OAC_PYTHON).
export const PYTHON = process.env.OAC_PYTHON ?? '/usr/bin/python3';
// DICOM files DCMTK made from dataset PNGs, with manifest.json (ctest fixture dicom_fixtures).
export const DICOM_FIXTURES = path.resolve(process.env.OAC_DICOM_FIXTURES
  ?? path.join(REPO_ROOT, 'build', 'native', 'tests', 'dicom', 'dicom_fixtures'));
/** Limit for a whole suite of tests that each may take up to SLOW_MS. */
export const SUITE_MS = 6 * SLOW_MS;

/** Ten different real X-rays from both classes and several sources. */
export const BATCH_OF_TEN = [
  ['test', 'Normal', '9000622L.png'],
  ['test', 'Normal', '9000622R.png'],
  ['test', 'Normal', '9001104L.png'],
  ['test', 'Normal', 'NormalG0 (84).png'],
  ['test', 'Osteoarthritis', '9120059_1.png'],
  ['train', 'Osteoarthritis', 'MildG2 (5).png'],
  ['train', 'Osteoarthritis', 'DoubtfulG1 (3).png'],
  ['Valid', 'Osteoarthritis', 'ModerateG3 (10).png'],
  ['Valid', 'Normal', '9001695L.png'],
  ['test', 'Normal', 'NormalG0 (374).png'],
].map((parts) => path.join(SEED_DATASET_DIR, ...parts));

/** Fails early, with the command that fixes it, when the app or the data is missing. */
export function requirePrerequisites() {
  if (!existsSync(path.join(DIST, 'index.html'))) {
    throw new Error(`${DIST} has no built app: run node tools/app/build_web.mjs`);
  }
  for (const file of [...Object.values(SAMPLES), ...BATCH_OF_TEN]) {
    if (!existsSync(file)) throw new Error(`sample X-ray ${file} is missing (set OAC_DATASETS to the datasets folder)`);
  }
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing (apt-get install chromium, or set OAC_CHROMIUM)`);
}

/**
 * A copy of the built app in a temporary folder: files are hard links (cheap, the model is big),
 * except those `changes` rewrites, which get fresh files so the original build stays untouched.
 */
export function copyOfApp(changes = {}) {
  const root = mkdtempSync(path.join(tmpdir(), 'oac-e2e-app-'));
  const copy = (relative) => {
    const source = path.join(DIST, relative);
    const target = path.join(root, relative);
    for (const entry of readdirSync(source, { withFileTypes: true })) {
      const child = path.join(relative, entry.name);
      if (entry.isDirectory()) {
        mkdirSync(path.join(root, child), { recursive: true });
        copy(child);
      } else if (changes[child]) {
        writeFileSync(path.join(target, entry.name), changes[child](readFileSync(path.join(source, entry.name))));
      } else {
        linkSync(path.join(source, entry.name), path.join(target, entry.name));
      }
    }
  };
  copy('');
  return {
    root,
    rewrite(relative, change) {
      const file = path.join(root, relative);
      const content = change(readFileSync(file));
      rmSync(file); // break the hard link before writing
      writeFileSync(file, content);
    },
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Opens the app and waits until the model is ready (or failed, then throws with its message). */
export async function openApp(page, url) {
  await page.goto(url);
  await page.waitForSelector('body[data-model-ready]', { timeout: SLOW_MS });
  if ((await page.getAttribute('body', 'data-model-ready')) !== 'true') {
    throw new Error(`the model did not load: ${await page.textContent('#model-status')}`);
  }
}

/**
 * What every browser suite sets up: the built app served, Chromium launched and the app opened with its model
 * ready. `beforeOpen(page)` runs before the app's scripts (e.g. exposeEngineWorker). Returns { server, browser,
 * page }; closeAppSession ends it.
 */
export async function openAppSession({ beforeOpen } = {}) {
  const server = await serveApp();
  const browser = await launchBrowser();
  const { page } = browser;
  if (beforeOpen) await beforeOpen(page);
  await openApp(page, server.url);
  return { server, browser, page };
}

export async function closeAppSession({ server, browser } = {}) {
  await browser?.close();
  await server?.close();
}

/**
 * Keeps the app's engine worker reachable as window.oacEngineWorker, so that a test can send it requests of its
 * own (engineStats). Installed before the app's scripts run: call it before openApp.
 */
export function exposeEngineWorker(page) {
  return page.addInitScript(() => {
    const PageWorker = window.Worker;
    window.Worker = class extends PageWorker {
      constructor(url, options) {
        super(url, options);
        if (new URL(url, window.location.href).pathname.endsWith('/worker.js')) window.oacEngineWorker = this;
      }
    };
  });
}

/** The engine worker's answer to {type:'stats'}: { filesChecked, coreHeapBytes } (needs exposeEngineWorker). */
export function engineStats(page) {
  return page.evaluate(() => new Promise((resolve) => {
    const worker = window.oacEngineWorker;
    // The page numbers its own requests; a string id never matches one of them, and the page ignores this reply.
    const requestId = `stats-${performance.now()}`;
    const onReply = ({ data }) => {
      if (data.type !== 'reply' || data.requestId !== requestId) return;
      worker.removeEventListener('message', onReply);
      const { type, requestId: _, ...stats } = data;
      resolve(stats);
    };
    worker.addEventListener('message', onReply);
    worker.postMessage({ type: 'stats', requestId });
  }));
}

/**
 * Measures the V8 heap in use after a full garbage collection, in the page and in its dedicated worker whose
 * URL ends with workerPath, through the DevTools protocol. Playwright keeps its own session with the worker,
 * so the probe attaches a second one through the page's session (not flattened: its messages travel inside
 * Target.sendMessageToTarget). Returns { measure() → { pageBytes, workerBytes }, close() }.
 */
export async function openHeapProbe(page, workerPath) {
  const cdp = await page.context().newCDPSession(page);
  const { targetInfos } = await cdp.send('Target.getTargets');
  const worker = targetInfos.find((target) => target.type === 'worker' && new URL(target.url).pathname.endsWith(workerPath));
  if (!worker) throw new Error(`no worker ${workerPath} among ${targetInfos.map((target) => target.url).join(', ')}`);
  const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: worker.targetId, flatten: false });
  const pending = new Map();
  let lastId = 0;
  cdp.on('Target.receivedMessageFromTarget', (event) => {
    const reply = JSON.parse(event.message);
    if (event.sessionId !== sessionId || !pending.has(reply.id)) return;
    pending.get(reply.id)(reply);
    pending.delete(reply.id);
  });
  const sendToWorker = (method) => new Promise((resolve, reject) => {
    lastId += 1;
    pending.set(lastId, (reply) => (reply.error ? reject(new Error(`${method}: ${reply.error.message}`)) : resolve(reply.result)));
    cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id: lastId, method }) }).catch(reject);
  });
  return {
    async measure() {
      await Promise.all([cdp.send('HeapProfiler.collectGarbage'), sendToWorker('HeapProfiler.collectGarbage')]);
      const [pageHeap, workerHeap] = await Promise.all([cdp.send('Runtime.getHeapUsage'), sendToWorker('Runtime.getHeapUsage')]);
      return { pageBytes: pageHeap.usedSize, workerBytes: workerHeap.usedSize };
    },
    close: () => cdp.detach(),
  };
}

/** Waits until every selected file has a result, then returns the status line. */
export async function waitForResults(page, fileCount) {
  await page.waitForFunction((count) => {
    const done = document.querySelectorAll('#detail .file-result').length > 0;
    if (count === 1) return done && !/Checking|Waiting/.test(document.querySelector('#status').textContent);
    return /^Checked \d+ files/.test(document.querySelector('#status').textContent);
  }, fileCount, { timeout: SLOW_MS });
  return page.textContent('#status');
}

/**
 * The knees shown in the detail view: [{ index, side, pOa, inDistribution, box ([x0, y0, x1, y1] in pixels of the
 * decoded image), byHand }].
 */
export async function shownKnees(page) {
  return page.$$eval('#detail .knee', (knees) => knees.map((knee) => ({
    index: Number(knee.dataset.index),
    side: knee.dataset.side,
    pOa: Number(knee.dataset.pOa),
    inDistribution: knee.dataset.inDistribution === 'true',
    box: knee.dataset.box ? knee.dataset.box.split(',').map(Number) : null,
    byHand: knee.dataset.byHand === 'true',
  })));
}

/** The boxes drawn over the whole image in the detail view: [{ index, box, pending, step }]. */
export async function shownBoxes(page) {
  return page.$$eval('#detail .knee-box', (boxes) => boxes.map((element) => ({
    index: Number(element.dataset.index),
    box: element.dataset.box.split(',').map(Number),
    pending: element.classList.contains('pending'),
    step: Number(element.dataset.step),
  })));
}

export async function screenshot(page, name) {
  mkdirSync(TEST_OUTPUT, { recursive: true });
  const file = path.join(TEST_OUTPUT, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** The model the CLI tests use: OAC_MODEL (a card or .onnx) or the CLI's own default. */
export const CLI_MODEL = process.env.OAC_MODEL ?? '';

/**
 * Runs `tools/oac classify ARGS`, by default with the built app's own card and core (so page and
 * CLI use the very same model and WASM files, even while build/wasm is being rebuilt).
 * coreDir null: the CLI's own default. Resolves to { code, results (parsed JSON lines), stdout, stderr }.
 */
export function runCli(args, { model = path.join(DIST, 'model', 'card.json'), coreDir = path.join(DIST, 'core'),
  input = null } = {}) {
  const modelArgs = model ? ['--model', model] : [];
  const env = coreDir ? { ...process.env, OAC_WASM_BUILD_DIR: coreDir } : process.env;
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(REPO_ROOT, 'tools', 'oac'), ['classify', ...modelArgs, ...args], { cwd: REPO_ROOT, env });
    const stdout = [];
    const stderr = [];
    child.stdout.on('data', (chunk) => stdout.push(chunk));
    child.stderr.on('data', (chunk) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      const out = Buffer.concat(stdout).toString('utf8');
      resolve({ code, results: parseLines(out), stdout: out, stderr: Buffer.concat(stderr).toString('utf8') });
    });
    child.stdin.end(input ?? '');
  });
}

function parseLines(stdout) {
  return stdout.split('\n').filter(Boolean).map((line) => {
    try {
      return JSON.parse(line);
    } catch {
      return { unparsable: line };
    }
  });
}

/** The DCMTK fixture cases by name: { file (absolute), source_png, ... } (tests/support/make_dicom_fixtures.py). */
export function dicomFixtureCases() {
  const manifest = path.join(DICOM_FIXTURES, 'manifest.json');
  if (!existsSync(manifest)) {
    throw new Error(`${manifest} is missing: make the DICOM fixtures first (ctest -R dicom_fixtures in build/native)`);
  }
  const { cases } = JSON.parse(readFileSync(manifest, 'utf8'));
  return Object.fromEntries(cases.map((entry) => [entry.name, { ...entry, file: path.join(DICOM_FIXTURES, entry.file) }]));
}

/**
 * Writes a small DICOM Part 10 file (explicit VR little endian, 12-bit MONOCHROME2, 256×200) with
 * a smooth synthetic pattern: enough to take the app's DICOM path without a real radiograph.
 */
export function writeSyntheticDicom(file) {
  const element = (group, tag, vr, value) => {
    const longForm = ['OB', 'OW'].includes(vr);
    const header = Buffer.alloc(longForm ? 12 : 8);
    header.writeUInt16LE(group, 0);
    header.writeUInt16LE(tag, 2);
    header.write(vr, 4, 'ascii');
    if (longForm) header.writeUInt32LE(value.length, 8);
    else header.writeUInt16LE(value.length, 6);
    return Buffer.concat([header, value]);
  };
  const unsigned16 = (value) => {
    const bytes = Buffer.alloc(2);
    bytes.writeUInt16LE(value);
    return bytes;
  };
  const evenText = (text, pad) => Buffer.from(text.length % 2 ? text + pad : text, 'ascii');
  const rows = 200;
  const columns = 256;
  const pixels = Buffer.alloc(rows * columns * 2);
  for (let y = 0; y < rows; y += 1) {
    for (let x = 0; x < columns; x += 1) {
      pixels.writeUInt16LE(Math.round(2047 + 2000 * Math.sin(x / 17) * Math.cos(y / 23)), (y * columns + x) * 2);
    }
  }
  const meta = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0010, 'UI', evenText('1.2.840.10008.1.2.1', '\0')), // explicit VR little endian
  ]);
  const metaLength = Buffer.alloc(4);
  metaLength.writeUInt32LE(meta.length);
  writeFileSync(file, Buffer.concat([
    Buffer.alloc(128), Buffer.from('DICM', 'ascii'), element(0x0002, 0x0000, 'UL', metaLength), meta,
    element(0x0028, 0x0002, 'US', unsigned16(1)),
    element(0x0028, 0x0004, 'CS', evenText('MONOCHROME2', ' ')),
    element(0x0028, 0x0010, 'US', unsigned16(rows)),
    element(0x0028, 0x0011, 'US', unsigned16(columns)),
    element(0x0028, 0x0100, 'US', unsigned16(16)),
    element(0x0028, 0x0101, 'US', unsigned16(12)),
    element(0x0028, 0x0102, 'US', unsigned16(11)),
    element(0x0028, 0x0103, 'US', unsigned16(0)),
    element(0x7fe0, 0x0010, 'OW', pixels),
  ]));
}
