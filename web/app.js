// The page: input, results and the service worker. All classification runs in worker.js; this
// module only moves files there and draws what comes back, so the page stays responsive.

import { failedFileResult, fileResult } from './engine.js';
import { HEAD_BYTES, sortFolder } from './dicom_folder.js';

const KL_GRADE_NAMES = ['none', 'doubtful', 'minimal', 'moderate', 'severe'];
const SIDE_LABELS = { single: 'single', left: 'left half', right: 'right half' };
const KNEE_TITLES = { single: 'Knee', left: 'Knee on the left half of the image', right: 'Knee on the right half of the image' };
// Short labels drawn on the boxes over the image: halves of the image as shown, not the patient's sides.
const BOX_LABELS = { single: 'Knee', left: 'Left of image', right: 'Right of image' };
const PATIENT_SIDES = { L: "patient's left knee", R: "patient's right knee" };
// After the last arrow or +/- key on a box, the knee is scored again once the keys rest this long.
const KEY_RESCORE_DELAY_MS = 600;
// Crops and heatmaps are kept for this many files; older ones are recomputed when opened again.
const MAX_FILES_WITH_VIEWS = 24;
const ISOLATION_RELOAD_KEY = 'oac-isolation-reload';

const $ = (selector) => document.querySelector(selector);
const elements = {
  status: $('#status'),
  modelStatus: $('#model-status'),
  modelDownload: $('#model-download'),
  modelProgress: $('#model-progress'),
  modelProgressText: $('#model-progress-text'),
  modelVersion: $('#model-version'),
  retryModel: $('#retry-model'),
  clearModel: $('#clear-model'),
  untrainedBanner: $('#untrained-banner'),
  updateBanner: $('#update-banner'),
  updateReload: $('#update-reload'),
  about: $('#about-device'),
  dropZone: $('#drop-zone'),
  fileInput: $('#file-input'),
  folderInput: $('#folder-input'),
  folderSummary: $('#folder-summary'),
  cameraInput: $('#camera-input'),
  results: $('#results'),
  batch: $('#batch'),
  tableBody: $('#results-table tbody'),
  sortButtons: document.querySelectorAll('#results-table th button'),
  exportCsv: $('#export-csv'),
  detail: $('#detail'),
  fileTemplate: $('#file-template'),
  kneeTemplate: $('#knee-template'),
};

const state = {
  card: null,
  entries: [],
  selectedId: null,
  sort: { key: null, direction: 'ascending' },
  selection: 0,
  maxFileBytes: 0,   // the core's file-size limit, from the worker once ready (0: the worker is asked about every file)
};

// ---------------------------------------------------------------------------------------------
// Worker

// The engine worker. Should it stop (an uncaught error: a crash in the core or ONNX Runtime, memory exhausted),
// every request it had not answered is answered with ENGINE_STOPPED and a fresh worker takes its place, as
// Squoosh's worker bridge does, so the app keeps working. A worker that never started is not started again.
let worker = null;
const pendingRequests = new Map();
let nextRequestId = 1;
const ENGINE_STOPPED = 'the engine stopped unexpectedly while working on this and was started again; try again';

/** Posts a request to the worker; resolves with its reply ({error} when the worker stopped before answering). */
function request(type, payload = {}, transfer = []) {
  const requestId = nextRequestId++;
  return new Promise((resolve) => {
    pendingRequests.set(requestId, resolve);
    worker.postMessage({ type, requestId, ...payload }, transfer);
  });
}

function answerPendingRequests(error) {
  const pending = [...pendingRequests.values()];
  pendingRequests.clear();
  for (const settle of pending) settle({ error });
}

function startWorker() {
  const current = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
  let running = false; // it ran its module and posted 'about'
  worker = current;
  current.addEventListener('message', (event) => {
    if (current !== worker) return;
    if (event.data.type === 'about') running = true;
    workerEvents[event.data.type]?.(event.data);
  });
  current.addEventListener('error', (event) => {
    event.preventDefault();
    if (current !== worker) return;
    if (!running) {
      answerPendingRequests(`the engine could not start (${event.message || 'this browser may be too old'})`);
      showModelError(`The engine could not start (${event.message || 'this browser may be too old'}).`);
      return;
    }
    current.terminate();
    answerPendingRequests(ENGINE_STOPPED);
    setModelStatus('The engine stopped unexpectedly; starting it again…', true);
    startWorker();
  });
  current.postMessage({ type: 'load' });
}

let modelSettled;
const modelSettledPromise = new Promise((resolve) => { modelSettled = resolve; });

const workerEvents = {
  about: ({ device }) => showDevice(device),
  card: ({ card }) => showCard(card),
  'model-status': ({ message }) => setModelStatus(message),
  'model-progress': ({ loaded, total }) => showModelProgress(loaded, total),
  ready: (message) => { state.maxFileBytes = message.maxFileBytes; showModelReady(message); modelSettled(); },
  'model-error': ({ message }) => { showModelError(message); modelSettled(); },
  reply: ({ requestId, ...reply }) => {
    pendingRequests.get(requestId)?.(reply);
    pendingRequests.delete(requestId);
  },
};

startWorker();

// ---------------------------------------------------------------------------------------------
// Model and device panel

function megabytes(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function percent(probability, digits = 1) {
  return `${(probability * 100).toFixed(digits)}%`;
}

function setModelStatus(message, isError = false) {
  elements.modelStatus.textContent = message;
  elements.modelStatus.classList.toggle('error', isError);
}

function showCard(card) {
  state.card = card;
  elements.untrainedBanner.hidden = !card.untrained;
  elements.modelVersion.textContent = `model ${card.name ?? card.model_file} ${card.version ?? ''}`.trim()
    + (card.untrained ? ' (untrained placeholder)' : '');
  setModelStatus(`Model ${card.name ?? card.model_file}, ${megabytes(card.bytes)}.`);
}

function showModelProgress(loaded, total) {
  elements.modelDownload.hidden = false;
  elements.modelProgress.max = total;
  elements.modelProgress.value = loaded;
  elements.modelProgressText.textContent = `${megabytes(loaded)} of ${megabytes(total)} (${percent(loaded / total, 0)})`;
}

function showModelReady({ fromCache, storedNote, seconds, device, selfTest }) {
  elements.modelDownload.hidden = true;
  elements.retryModel.hidden = true;
  const how = fromCache ? 'loaded from this device' : 'downloaded, verified and stored on this device';
  const checked = selfTest.checked ? ' This device computed the model\'s known test case correctly.' : '';
  setModelStatus(`Model ready: ${how} in ${seconds.toFixed(1)} s.${checked} ${storedNote}`.trim());
  document.body.dataset.modelReady = 'true';
  document.body.dataset.selfTest = selfTest.checked ? 'passed' : 'none';
  showDevice(device);
}

function showModelError(message) {
  elements.modelDownload.hidden = true;
  elements.retryModel.hidden = false;
  setModelStatus(message, true);
  document.body.dataset.modelReady = 'false';
  announce(message, true);
}

function showDevice(device) {
  const threadText = device.threads > 1
    ? `${device.threads} threads (cross-origin isolated)`
    : `1 thread (${device.isolated ? 'one processor core' : 'not cross-origin isolated'})`;
  const simdText = device.simd ? 'WebAssembly SIMD on' : 'no WebAssembly SIMD';
  elements.about.textContent = `About this device: ${threadText}, ${simdText}, `
    + `${device.hardwareConcurrency} logical processors.`;
  elements.about.dataset.threads = String(device.threads);
  elements.about.dataset.isolated = String(device.isolated);
}

elements.retryModel.addEventListener('click', () => {
  elements.retryModel.hidden = true;
  setModelStatus('Trying again…');
  worker.postMessage({ type: 'load' });
});

elements.clearModel.addEventListener('click', async () => {
  const { removed, error } = await request('clear-model');
  if (error) setModelStatus(`The stored model could not be removed: ${error}`, true);
  else {
    setModelStatus(removed
      ? 'Removed the stored model. It will download again the next time the app starts.'
      : 'No stored model to remove.');
  }
});

// ---------------------------------------------------------------------------------------------
// Input

function announce(message, isError = false) {
  elements.status.textContent = message;
  elements.status.classList.toggle('error', isError);
}

elements.fileInput.addEventListener('change', () => {
  checkFiles(elements.fileInput.files);
  elements.fileInput.value = '';
});
elements.cameraInput.addEventListener('change', () => {
  checkFiles(elements.cameraInput.files);
  elements.cameraInput.value = '';
});
elements.folderInput.addEventListener('change', () => {
  const files = Array.from(elements.folderInput.files);
  elements.folderInput.value = '';
  checkFolder(files.map((file) => ({ file, path: file.webkitRelativePath || file.name })));
});
$('#choose-files').addEventListener('click', () => elements.fileInput.click());
$('#choose-folder').addEventListener('click', () => elements.folderInput.click());
$('#take-photo').addEventListener('click', () => elements.cameraInput.click());

// A file dropped anywhere is taken, instead of the browser navigating away to it.
document.addEventListener('dragover', (event) => {
  event.preventDefault();
  elements.dropZone.classList.add('dragging');
});
document.addEventListener('dragleave', (event) => {
  if (!event.relatedTarget) elements.dropZone.classList.remove('dragging');
});
document.addEventListener('drop', (event) => {
  event.preventDefault();
  elements.dropZone.classList.remove('dragging');
  // Entries must be taken while the event lasts; a folder among them makes the drop a folder's.
  const entries = Array.from(event.dataTransfer?.items ?? [], (item) => item.webkitGetAsEntry?.()).filter(Boolean);
  if (entries.some((entry) => entry.isDirectory)) filesInEntries(entries).then(checkFolder);
  else checkFiles(event.dataTransfer?.files);
});

/** Every file under dropped file-system entries, as [{ file, path }]. */
async function filesInEntries(entries) {
  const found = [];
  for (const entry of entries) {
    if (entry.isFile) {
      found.push({ file: await new Promise((resolve, reject) => entry.file(resolve, reject)), path: entry.fullPath.slice(1) });
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      // readEntries hands a folder's entries over in batches until it returns none.
      for (let batch = await readBatch(reader); batch.length; batch = await readBatch(reader)) {
        found.push(...await filesInEntries(batch));
      }
    }
  }
  return found;
}

function readBatch(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

/**
 * A folder ([{ file, path }]): its X-rays checked in study and series order, one sentence about the files that are
 * not images, and one about a DICOMDIR that could not be used (web/dicom_folder.js decides which are which, the core
 * reads the DICOMDIR and DICOM headers).
 */
async function checkFolder(found) {
  announce('Looking through the folder…');
  const pathOf = new Map(found.map(({ file, path }) => [file, path]));
  const sorted = await sortFolder(found.map(({ file }) => file), {
    head: async (file) => new Uint8Array(await file.slice(0, HEAD_BYTES).arrayBuffer()),
    describe: async (file) => {
      const buffer = await file.arrayBuffer();
      const reply = await request('describe', { buffer }, [buffer]);
      return reply.error ? { ok: false, error: reply.error } : reply.described;
    },
    readDirectory: async (file) => {
      const buffer = await file.arrayBuffer();
      const reply = await request('directory', { buffer }, [buffer]);
      return reply.error ? { ok: false, error: reply.error } : reply.directory;
    },
    pathOf: (file) => pathOf.get(file),
  });
  const summary = [sorted.directory, sorted.notImages].filter(Boolean).map((sentence) => `${sentence}.`).join(' ');
  if (sorted.images.length === 0) {
    announce(`No X-ray image was found in this folder.${summary ? ` ${summary}` : ''}`, true);
    return;
  }
  await checkFiles(sorted.images.map(({ file }) => file), {
    names: pathOf,
    series: new Map(sorted.images.map(({ file, series }) => [file, series])),
    folderSummary: summary,
  });
}
document.addEventListener('paste', (event) => {
  const files = Array.from(event.clipboardData?.files ?? []);
  if (files.length) {
    event.preventDefault();
    checkFiles(files);
  } else if (event.clipboardData?.types.includes('text/plain') && !event.target.closest?.('input, textarea')) {
    announce('The clipboard holds text, not an image. Copy an X-ray image and paste again.', true);
  }
});

function readableError(error) {
  return `${error.charAt(0).toUpperCase()}${error.slice(1)}${/[.!?]$/.test(error) ? '' : '.'}`;
}

/**
 * Checks files in turn. From a folder: `names` (file → its path in the folder), `series` (file → its study and
 * series, as web/dicom_folder.js words them) and the folder's sentence about its files that are not images.
 */
async function checkFiles(fileList, { names = new Map(), series = new Map(), folderSummary = '' } = {}) {
  const files = Array.from(fileList ?? []);
  if (files.length === 0) {
    announce('Nothing to check: no file was received.', true);
    return;
  }
  state.selection += 1;
  const selection = state.selection;
  state.entries = files.map((file, i) => ({
    id: `${selection}-${i}`, file, name: names.get(file) || file.name || 'pasted image', series: series.get(file) ?? '',
    status: 'waiting', summary: null, views: null,
  }));
  elements.folderSummary.textContent = folderSummary;
  elements.folderSummary.hidden = !folderSummary;
  state.selectedId = state.entries[0].id;
  elements.results.hidden = false;
  render();

  for (const [index, entry] of state.entries.entries()) {
    if (selection !== state.selection) return; // a newer selection replaced this one
    if (files.length > 1) announce(`Checking ${index + 1} of ${files.length}…`);
    else announce(document.body.dataset.modelReady === 'true' ? 'Checking…' : 'Waiting for the model…');
    entry.status = 'working';
    render(entry);
    await classifyEntry(entry);
    if (selection !== state.selection) return;
    forgetOldViews();
    render(entry);
    if (files.length === 1) announceEntry(entry);
  }
  if (files.length > 1) {
    const failed = state.entries.filter((entry) => entry.status === 'failed').length;
    const withoutKnee = state.entries.filter(hasNoKnee).length;
    announce(`Checked ${files.length} files: ${files.length - failed - withoutKnee} classified`
      + `${withoutKnee ? `, ${withoutKnee} without a knee joint found` : ''}`
      + `${failed ? `, ${failed} could not be read` : ''}. Results are in the table below.`, failed > 0);
  }
}

async function classifyEntry(entry) {
  let buffer;
  // The core's own limits, asked before the file is read into memory; a file within the limit the worker stated
  // when it became ready skips that round trip.
  const withinLimit = entry.file.size > 0 && entry.file.size <= state.maxFileBytes;
  const { problem, error } = withinLimit ? {} : await request('file-size', { bytes: entry.file.size });
  if (problem || error) {
    entry.summary = failedFileResult(entry.name, problem || error);
  } else {
    try {
      buffer = await entry.file.arrayBuffer();
    } catch {
      entry.summary = failedFileResult(entry.name, 'the file could not be read from this device');
    }
  }
  if (buffer) {
    // Boxes set by hand before (its pictures were dropped and are made again) are set again first.
    const reply = await request('classify', { fileId: entry.id, name: entry.name, buffer, boxes: handBoxes(entry) }, [buffer]);
    entry.summary = reply.error ? failedFileResult(entry.name, reply.error) : reply.summary;
    entry.views = reply.views ?? null;
    entry.overview = reply.overview ?? null;
    entry.image = reply.image ?? null;
    entry.milliseconds = reply.milliseconds;
  }
  entry.status = entry.summary.ok ? 'done' : 'failed';
}

/** The boxes a person set on this file's knees: [{ index, box }]. */
function handBoxes(entry) {
  if (!entry.summary?.ok) return [];
  return entry.summary.knees.flatMap((knee, index) => (knee.by_hand ? [{ index, box: knee.box }] : []));
}

function forgetOldViews() {
  const withViews = state.entries.filter((entry) => (entry.views || entry.overview) && entry.id !== state.selectedId);
  for (const entry of withViews.slice(0, Math.max(0, withViews.length - MAX_FILES_WITH_VIEWS))) {
    entry.views = null;
    entry.overview = null;
  }
}

/** A file that decoded but where the core found no knee joint (the page offers to draw its box). */
function hasNoKnee(entry) {
  return Boolean(entry.summary?.ok && entry.summary.knees.length === 0);
}

function kneeTitle(knee) {
  const title = KNEE_TITLES[knee.side] ?? 'Knee';
  return PATIENT_SIDES[knee.patient_side] ? `${title} (${PATIENT_SIDES[knee.patient_side]})` : title;
}

function kneeSentence(knee) {
  const title = `${kneeTitle(knee)}${knee.by_hand ? ', box set by hand' : ''}`;
  if (!knee.in_distribution) return `${title}: this does not look like a knee X-ray.`;
  return `${title}: ${percent(knee.p_oa)} chance of osteoarthritis, ${knee.oa ? 'osteoarthritis likely' : 'osteoarthritis unlikely'}.`;
}

function announceEntry(entry) {
  if (!entry.summary.ok) {
    announce(`Could not check ${entry.name}: ${readableError(entry.summary.error)}`, true);
    return;
  }
  if (hasNoKnee(entry)) {
    announce(`${entry.name}: ${entry.summary.notice} Choose "Draw the knee's box" below.`);
    return;
  }
  const timing = entry.milliseconds ? ` (${Math.round(entry.milliseconds)} ms)` : '';
  announce(`${entry.name}${timing}: ${entry.summary.knees.map(kneeSentence).join(' ')}`);
}

// ---------------------------------------------------------------------------------------------
// Results: table (batch) and detail (one file)

function tableRows() {
  return state.entries.flatMap((entry) => {
    if (entry.status === 'waiting' || entry.status === 'working') {
      return [{ entry, knee: '', p_oa: null, kl_grade: null, status: entry.status === 'working' ? 'Checking…' : 'Waiting' }];
    }
    if (!entry.summary.ok) {
      return [{ entry, knee: '', p_oa: null, kl_grade: null, status: `Error: ${entry.summary.error}`, error: entry.summary.error }];
    }
    if (hasNoKnee(entry)) {
      return [{ entry, knee: '', p_oa: null, kl_grade: null, status: 'No knee joint found: open the file to draw its box' }];
    }
    return entry.summary.knees.map((knee) => ({
      entry,
      knee: `${SIDE_LABELS[knee.side] ?? knee.side}${knee.patient_side ? ` (${knee.patient_side})` : ''}`,
      kneeResult: knee,
      p_oa: knee.in_distribution ? knee.p_oa : null,
      kl_grade: knee.in_distribution ? knee.kl_grade : null,
      status: (!knee.in_distribution ? 'Not a knee X-ray' : (knee.oa ? 'OA likely' : 'OA unlikely'))
        + (knee.by_hand ? ' (box set by hand)' : ''),
    }));
  });
}

function sortedRows() {
  const rows = tableRows();
  const { key, direction } = state.sort;
  if (!key) return rows;
  const sign = direction === 'ascending' ? 1 : -1;
  const value = (row) => (key === 'file' ? row.entry.name : row[key]);
  return rows.sort((a, b) => {
    const left = value(a);
    const right = value(b);
    if (left === null || left === right) return left === right ? 0 : 1; // empty cells last
    if (right === null) return -1;
    return sign * (typeof left === 'number' ? left - right : String(left).localeCompare(String(right), undefined, { numeric: true }));
  });
}

/** Redraws the table, and the detail view unless only another file than the shown one changed. */
function render(changedEntry = null) {
  const batch = state.entries.length > 1;
  elements.batch.hidden = !batch;
  if (batch) renderTable();
  if (!changedEntry || changedEntry.id === state.selectedId) renderDetail();
}

function renderTable() {
  const rows = sortedRows();
  const cells = rows.map((row) => {
    const tr = document.createElement('tr');
    tr.dataset.entry = row.entry.id;
    tr.classList.toggle('selected', row.entry.id === state.selectedId);
    const fileCell = document.createElement('td');
    const open = document.createElement('button');
    open.type = 'button';
    open.className = 'link';
    open.textContent = row.entry.name;
    open.addEventListener('click', () => selectEntry(row.entry.id));
    fileCell.append(open);
    if (row.entry.series) {
      const series = document.createElement('span');
      series.className = 'series';
      series.textContent = row.entry.series;
      fileCell.append(series);
    }
    const values = [row.knee, row.p_oa === null ? '—' : percent(row.p_oa), row.kl_grade ?? '—', row.status];
    const others = values.map((value, i) => {
      const td = document.createElement('td');
      td.textContent = String(value);
      if (i === 1 || i === 2) td.className = 'number';
      return td;
    });
    tr.append(fileCell, ...others);
    return tr;
  });
  elements.tableBody.replaceChildren(...cells);
  for (const button of elements.sortButtons) {
    button.parentElement.setAttribute('aria-sort', button.dataset.sort === state.sort.key ? state.sort.direction : 'none');
  }
}

for (const button of elements.sortButtons) {
  button.addEventListener('click', () => {
    const key = button.dataset.sort;
    state.sort = {
      key,
      direction: state.sort.key === key && state.sort.direction === 'ascending' ? 'descending' : 'ascending',
    };
    renderTable();
  });
}

async function selectEntry(id) {
  state.selectedId = id;
  const entry = state.entries.find((candidate) => candidate.id === id);
  render();
  if (entry?.status === 'done' && (!entry.views || !entry.overview)) {
    // Its pictures were dropped to save memory; compute them again.
    const selection = state.selection;
    await classifyEntry(entry);
    if (selection === state.selection && state.selectedId === id) renderDetail();
  }
  elements.detail.querySelector('h3')?.focus();
}

function renderDetail() {
  const entry = state.entries.find((candidate) => candidate.id === state.selectedId);
  if (!entry || entry.status === 'waiting' || entry.status === 'working') {
    const message = document.createElement('p');
    message.textContent = entry ? `Checking ${entry.name}…` : '';
    elements.detail.replaceChildren(message);
    return;
  }
  const view = elements.fileTemplate.content.firstElementChild.cloneNode(true);
  view.dataset.file = entry.name;
  const heading = view.querySelector('.file-name');
  heading.textContent = entry.series ? `${entry.name} (${entry.series})` : entry.name;
  heading.tabIndex = -1;
  shownFile?.dispose();
  shownFile = null;
  if (!entry.summary.ok) {
    drawOriginal(entry.file, view.querySelector('.original'));
    const error = view.querySelector('.file-error');
    error.hidden = false;
    error.textContent = `This file could not be checked: ${readableError(entry.summary.error)} `
      + 'Try a PNG, JPEG, BMP or DICOM image of a knee X-ray.';
  } else {
    const facts = dicomFacts(entry.summary);
    if (facts) {
      const meta = view.querySelector('.file-meta');
      meta.hidden = false;
      meta.textContent = `From the DICOM header: ${facts}.`;
    }
    const knees = entry.summary.knees.map((knee, i) => renderKnee(knee, entry.views?.[i], i));
    view.querySelector('.knees').replaceChildren(...knees);
    shownFile = new ShownFile(entry, view);
    view.querySelector('.file-actions').hidden = false;
    view.querySelector('.print-report').addEventListener('click', () => printReport(entry, view));
  }
  elements.detail.replaceChildren(view);
}

/**
 * Prints one file's report (the browser's print dialog also saves it as a PDF): the print stylesheet shows only the
 * file named on <body> while it prints, without the app's controls. The class goes again after printing.
 */
function printReport(entry, view) {
  fillReportFacts(view);
  for (const other of document.querySelectorAll('.file-result.print-target')) other.classList.remove('print-target');
  view.classList.add('print-target');
  document.body.classList.add('printing-report');
  document.body.dataset.printFile = entry.name;
  window.print();
}

/** The printed report's date and model (name, version, sha256 from the card the worker posted). */
function fillReportFacts(view) {
  const card = state.card ?? {};
  view.querySelector('.report-date').textContent = new Date().toLocaleString(undefined, { dateStyle: 'long', timeStyle: 'short' });
  view.querySelector('.report-model').textContent = `${card.name ?? card.model_file ?? 'unknown'} ${card.version ?? ''}`.trim()
    + (card.untrained ? ' (untrained placeholder: the numbers are meaningless)' : '');
  view.querySelector('.report-sha').textContent = card.sha256 ?? 'unknown';
}

// Printed from the browser's menu instead of the button: the shown file's report, with its date and model.
window.addEventListener('beforeprint', () => {
  for (const view of document.querySelectorAll('#detail .file-result')) fillReportFacts(view);
});

window.addEventListener('afterprint', () => {
  document.body.classList.remove('printing-report');
  delete document.body.dataset.printFile;
  for (const view of document.querySelectorAll('.file-result.print-target')) view.classList.remove('print-target');
});

const LATERALITY_NAMES = { L: 'left knee', R: 'right knee', B: 'both knees', U: 'side not stated' };

/** What a DICOM header added to the result (laterality, pixel spacing, frames), in words, or ''. */
function dicomFacts(summary) {
  const facts = [];
  if (summary.laterality) facts.push(`laterality ${LATERALITY_NAMES[summary.laterality] ?? summary.laterality}`);
  if (summary.pixel_spacing_mm) facts.push(`pixel spacing ${summary.pixel_spacing_mm.join(' × ')} mm`);
  if (summary.frames) facts.push(`only the first of its ${summary.frames} frames was checked`);
  return facts.join(', ');
}

async function drawOriginal(file, figure) {
  try {
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, 640 / Math.max(bitmap.width, bitmap.height));
    const canvas = figure.querySelector('canvas');
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    figure.hidden = false;
  } catch {
    // The browser cannot show this format itself; the core's crops below still show what was seen.
  }
}

function paint(canvas, rgba, width, height) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(rgba, width, height), 0, 0);
}

/** A KL prediction set in words: "KL 2", "KL 1–2", "KL 0, 2". */
function klSetText(grades) {
  const sorted = [...grades].sort((a, b) => a - b);
  if (sorted.length === 1) return `KL ${sorted[0]}`;
  const contiguous = sorted.every((grade, i) => i === 0 || grade === sorted[i - 1] + 1);
  return contiguous ? `KL ${sorted[0]}–${sorted.at(-1)}` : `KL ${sorted.join(', ')}`;
}

/** " (90% coverage)" from the card, or '' before the card is known. */
function klSetCoverage() {
  const coverage = state.card?.kl_set?.coverage;
  return Number.isFinite(coverage) ? ` (${percent(coverage, 0)} coverage)` : '';
}

/** Why the "likely" level sits where it does (the card's threshold_target), or '' for a card without one. */
function thresholdInWords() {
  const sensitivity = state.card?.threshold_target?.sensitivity;
  if (!Number.isFinite(sensitivity) || !Number.isFinite(state.card?.threshold)) return '';
  return ` That level, ${percent(state.card.threshold, 0)}, is set low on purpose: on knee X-rays kept apart to`
    + ` choose it, with a safety margin, at least ${Math.round(sensitivity * 10)} in 10 knees with osteoarthritis`
    + ' reach it, so knees without osteoarthritis sometimes reach it too.';
}

/** How sure the model is about one knee, for a patient. */
function certaintyInWords(knee, klSet) {
  const coverage = state.card?.kl_set?.coverage;
  const often = Number.isFinite(coverage) ? `about ${Math.round(coverage * 10)} in 10` : 'most';
  const chance = `The model puts the chance that this knee shows osteoarthritis at ${percent(knee.p_oa)}`
    + ` (${knee.oa ? 'at or above' : 'below'} the level at which it says "likely").${thresholdInWords()}`;
  if (!klSet.length) return chance;
  const grades = klSet.length === 1
    ? `It points to one grade, ${klSetText(klSet)}`
    : `It cannot tell between ${klSetText(klSet).replace(/^KL /, 'KL grades ')}`;
  return `${chance} ${grades}: for ${often} knees like the ones it was checked on, the true grade is among the grades `
    + 'it names this way.';
}

function renderKnee(knee, images, index) {
  const view = elements.kneeTemplate.content.firstElementChild.cloneNode(true);
  view.dataset.index = String(index);
  view.dataset.side = knee.side;
  view.dataset.pOa = String(knee.p_oa);
  view.dataset.inDistribution = String(knee.in_distribution);
  view.dataset.box = knee.box ? knee.box.join(',') : '';
  view.dataset.byHand = String(Boolean(knee.by_hand));
  view.querySelector('.knee-title').textContent = kneeTitle(knee);
  if (knee.by_hand) view.querySelector('.by-hand').hidden = false;
  view.dataset.inverted = String(Boolean(knee.inverted));
  if (knee.inverted) view.querySelector('.inverted-note').hidden = false;

  if (!knee.in_distribution) {
    view.querySelector('.probability').hidden = true;
    view.querySelector('.verdict').hidden = true;
    view.querySelector('.kl').hidden = true;
    view.querySelector('.cam-figure').hidden = true;
    view.querySelector('.ood-message').hidden = false;
  } else {
    view.querySelector('.probability-value').textContent = percent(knee.p_oa);
    const verdict = view.querySelector('.verdict');
    const threshold = state.card ? percent(state.card.threshold, 0) : 'its threshold';
    verdict.textContent = knee.oa
      ? `Osteoarthritis likely: at or above the model's decision threshold of ${threshold}. `
        + '(Osteoarthritis here means Kellgren–Lawrence grade 2 or higher.)'
      : `Osteoarthritis unlikely: below the model's decision threshold of ${threshold}.`;
    verdict.classList.add(knee.oa ? 'positive' : 'negative');
    const klSet = knee.kl_set ?? [];
    view.dataset.klSet = klSet.join(',');
    view.querySelector('.kl-bars').replaceChildren(...knee.kl_probs.map((probability, grade) => {
      const item = document.createElement('li');
      item.classList.toggle('shown-grade', grade === knee.kl_grade);  // the card's rule, not always the tallest bar
      item.classList.toggle('in-set', klSet.includes(grade));
      const label = document.createElement('span');
      label.className = 'kl-label';
      label.textContent = `KL ${grade} · ${KL_GRADE_NAMES[grade]}`;
      if (klSet.includes(grade)) {
        const mark = document.createElement('span');
        mark.className = 'visually-hidden';
        mark.textContent = ' (one of the likely grades)';
        label.append(mark);
      }
      const track = document.createElement('span');
      track.className = 'kl-track';
      track.setAttribute('aria-hidden', 'true');
      const fill = document.createElement('span');
      fill.className = 'kl-fill';
      fill.style.width = percent(probability);
      track.append(fill);
      const value = document.createElement('span');
      value.className = 'kl-value';
      value.textContent = percent(probability, 0);
      item.append(label, track, value);
      return item;
    }));
    if (klSet.length) {
      const setLine = view.querySelector('.kl-set');
      setLine.hidden = false;
      setLine.textContent = `Likely grades: ${klSetText(klSet)}${klSetCoverage()}`;
    }
    view.querySelector('.explain').hidden = false;
    view.querySelector('.explain-certainty').textContent = certaintyInWords(knee, klSet);
  }

  if (images) {
    paint(view.querySelector('.crop-canvas'), images.cropRgba, images.width, images.height);
    paint(view.querySelector('.cam-base'), images.cropRgba, images.width, images.height);
    const overlay = view.querySelector('.cam-overlay');
    paint(overlay, images.camRgba, images.width, images.height);
    const opacity = view.querySelector('.cam-opacity');
    const toggle = view.querySelector('.cam-toggle');
    const update = () => {
      overlay.style.opacity = String(opacity.value / 100);
      overlay.hidden = !toggle.checked;
      opacity.disabled = !toggle.checked;
    };
    opacity.addEventListener('input', update);
    toggle.addEventListener('change', update);
    update();
  } else {
    view.querySelector('.figures').hidden = true;
  }
  return view;
}

// ---------------------------------------------------------------------------------------------
// The whole image with a box on each knee: moving and resizing a box (pointer or keys), drawing one
// where no knee was found, and scoring that knee again from its box in the worker.

/** The detail view's whole-image editor, or null (a failed file, or nothing shown). */
let shownFile = null;

// The smallest box side, as a fraction of the image's shorter side (the core needs 2 pixels at least).
const MIN_BOX_FRACTION = 0.04;
// Arrow keys move a box by this fraction of the image's shorter side; with Shift ten times as far.
const KEY_STEP_FRACTION = 0.01;

function sameBox(a, b) {
  return Boolean(a && b) && a.length === 4 && a.every((edge, i) => edge === b[i]);
}

/** A square box of side `side` with its top-left corner at (x0, y0), kept inside a width × height image. */
function squareBox(x0, y0, side, width, height) {
  const limit = Math.min(width, height);
  const minimum = Math.min(limit, Math.max(2, Math.round(limit * MIN_BOX_FRACTION)));
  const edge = Math.round(Math.min(limit, Math.max(minimum, side)));
  const left = Math.round(Math.min(Math.max(0, x0), width - edge));
  const top = Math.round(Math.min(Math.max(0, y0), height - edge));
  return [left, top, left + edge, top + edge];
}

function boxSide(box) {
  return Math.max(box[2] - box[0], box[3] - box[1]);
}

/** The DICOM facts of a result, to carry over when one of its knees is scored again. */
function metadataOf(summary) {
  const metadata = {};
  if (summary.pixel_spacing_mm) metadata.pixel_spacing_mm = summary.pixel_spacing_mm;
  if (summary.laterality) metadata.laterality = summary.laterality;
  if (summary.frames) metadata.frames = summary.frames;
  return metadata;
}

function paintGrey(canvas, grey, width, height) {
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < grey.length; i += 1) {
    const value = grey[i];
    rgba[i * 4] = value;
    rgba[i * 4 + 1] = value;
    rgba[i * 4 + 2] = value;
    rgba[i * 4 + 3] = 255;
  }
  paint(canvas, rgba, width, height);
}

function boxLabel(knee, pending) {
  if (pending) return 'New knee box';
  const label = BOX_LABELS[knee.side] ?? 'Knee';
  return knee.patient_side ? `${label} · patient's ${knee.patient_side}` : label;
}

class ShownFile {
  constructor(entry, view) {
    this.entry = entry;
    this.view = view;
    this.figure = view.querySelector('.overview');
    this.stack = view.querySelector('.overview-stack');
    this.layer = view.querySelector('.overview-boxes');
    this.tools = view.querySelector('.box-tools');
    this.drawButton = view.querySelector('.draw-box');
    this.hint = view.querySelector('.draw-hint');
    this.notice = view.querySelector('.no-knee-notice');
    this.records = []; // per knee index (and the new knee's box at the end): { element, label, box, scored, timer }
    this.drawing = false;
    if (hasNoKnee(entry)) {
      this.notice.hidden = false;
      this.notice.textContent = entry.summary.notice;
    }
    if (!entry.overview || !entry.image) return; // its pictures are being made again
    const { width, height, grey } = entry.overview;
    paintGrey(view.querySelector('.overview-canvas'), grey, width, height);
    this.stack.style.aspectRatio = `${width} / ${height}`;
    this.stack.style.setProperty('--aspect', (width / height).toFixed(4));
    this.stack.style.width = `min(100%, calc(70vh * ${(width / height).toFixed(4)}))`;
    this.figure.hidden = false;
    this.stack.addEventListener('pointerdown', (event) => this.startDrawing(event));
    this.drawButton.addEventListener('click', () => this.placeNewBox());
    entry.summary.knees.forEach((knee, index) => this.addRecord(index, knee.box, knee));
    if (entry.pendingBox) this.addRecord(entry.summary.knees.length, entry.pendingBox, null);
    this.updateTools();
  }

  get width() { return this.entry.image.width; }

  get height() { return this.entry.image.height; }

  /** Image pixels per CSS pixel of the shown picture. */
  scale() {
    return this.width / this.stack.getBoundingClientRect().width;
  }

  keyStep(large) {
    const step = Math.max(1, Math.round(Math.min(this.width, this.height) * KEY_STEP_FRACTION));
    return large ? 10 * step : step;
  }

  addRecord(index, box, knee) {
    const element = document.createElement('div');
    element.className = 'knee-box';
    element.tabIndex = 0;
    element.setAttribute('role', 'group');
    element.setAttribute('aria-roledescription', 'movable box');
    element.dataset.index = String(index);
    const label = document.createElement('span');
    label.className = 'knee-box-label';
    label.setAttribute('aria-hidden', 'true');
    const handle = document.createElement('span');
    handle.className = 'knee-box-handle';
    handle.setAttribute('aria-hidden', 'true');
    element.append(label, handle);
    const record = { index, element, label, box, scored: knee ? knee.box : null, timer: null };
    this.records[index] = record;
    this.describe(record, knee);
    this.place(record);
    element.addEventListener('pointerdown', (event) => this.startDrag(event, record, event.target === handle ? 'resize' : 'move'));
    element.addEventListener('keydown', (event) => this.onKey(event, record));
    this.layer.append(element);
    return record;
  }

  describe(record, knee) {
    const pending = !knee;
    record.element.classList.toggle('pending', pending);
    record.element.classList.toggle('by-hand', Boolean(knee?.by_hand));
    record.label.textContent = boxLabel(knee, pending);
    const name = pending ? 'New knee box, not scored yet' : `Box of the ${kneeTitle(knee).replace(/^Knee/, 'knee')}`
      + `${knee.by_hand ? ', set by hand' : ''}`;
    record.element.setAttribute('aria-label', `${name}. Arrow keys move it, with Shift in bigger steps; plus and minus `
      + `resize it; Enter scores the knee ${pending ? '' : 'again '}from it${pending ? '; Escape removes it' : '; Escape puts it back'}.`);
  }

  place(record) {
    const [x0, y0, x1, y1] = record.box;
    const style = record.element.style;
    style.left = `${(x0 / this.width) * 100}%`;
    style.top = `${(y0 / this.height) * 100}%`;
    style.width = `${((x1 - x0) / this.width) * 100}%`;
    style.height = `${((y1 - y0) / this.height) * 100}%`;
    record.element.dataset.box = record.box.join(',');
    record.element.dataset.step = String(this.keyStep(false));
  }

  move(record, box) {
    record.box = box;
    this.place(record);
  }

  isPending(record) {
    return record.index >= this.entry.summary.knees.length;
  }

  startDrag(event, record, mode) {
    if (event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    record.element.focus({ preventScroll: true });
    clearTimeout(record.timer);
    record.timer = null;
    const { element } = record;
    element.setPointerCapture(event.pointerId);
    record.dragging = true;
    const start = { x: event.clientX, y: event.clientY, box: record.box, scale: this.scale() };
    let moved = false;
    const onMove = (moveEvent) => {
      const dx = (moveEvent.clientX - start.x) * start.scale;
      const dy = (moveEvent.clientY - start.y) * start.scale;
      const [x0, y0, x1, y1] = start.box;
      let box;
      if (mode === 'move') {
        box = squareBox(x0 + dx, y0 + dy, boxSide(start.box), this.width, this.height);
      } else {
        // The corner follows the pointer; the opposite corner stays.
        const side = Math.min(Math.max(x1 - x0 + dx, y1 - y0 + dy), this.width - x0, this.height - y0);
        box = squareBox(x0, y0, side, this.width, this.height);
      }
      moved ||= !sameBox(box, start.box);
      this.move(record, box);
    };
    const onEnd = (endEvent) => {
      element.removeEventListener('pointermove', onMove);
      element.removeEventListener('pointerup', onEnd);
      element.removeEventListener('pointercancel', onEnd);
      if (element.hasPointerCapture(endEvent.pointerId)) element.releasePointerCapture(endEvent.pointerId);
      record.dragging = false;
      if (endEvent.type === 'pointercancel') this.move(record, start.box);
      // commit() skips a box that was scored already; a new knee's box is only scored once it was moved.
      else if (moved || !this.isPending(record)) this.commit(record);
    };
    element.addEventListener('pointermove', onMove);
    element.addEventListener('pointerup', onEnd);
    element.addEventListener('pointercancel', onEnd);
  }

  /** In drawing mode, a drag on the picture draws the new knee's box; a click moves it there. */
  startDrawing(event) {
    if (!this.drawing || event.button !== 0 || event.target.closest('.knee-box')) return;
    event.preventDefault();
    const rect = this.stack.getBoundingClientRect();
    const scale = this.width / rect.width;
    const anchor = { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
    const index = this.entry.summary.knees.length;
    const record = this.records[index] ?? this.addRecord(index, squareBox(anchor.x, anchor.y, 0, this.width, this.height), null);
    const before = record.box;
    clearTimeout(record.timer);
    record.timer = null;
    record.dragging = true;
    this.stack.setPointerCapture(event.pointerId);
    let drawn = false;
    const onMove = (moveEvent) => {
      const dx = (moveEvent.clientX - rect.left) * scale - anchor.x;
      const dy = (moveEvent.clientY - rect.top) * scale - anchor.y;
      if (!drawn && Math.hypot(dx, dy) < 3 * scale) return;
      drawn = true;
      const side = Math.max(Math.abs(dx), Math.abs(dy));
      this.move(record, squareBox(dx < 0 ? anchor.x - side : anchor.x, dy < 0 ? anchor.y - side : anchor.y, side,
        this.width, this.height));
    };
    const onEnd = (endEvent) => {
      this.stack.removeEventListener('pointermove', onMove);
      this.stack.removeEventListener('pointerup', onEnd);
      this.stack.removeEventListener('pointercancel', onEnd);
      if (this.stack.hasPointerCapture(endEvent.pointerId)) this.stack.releasePointerCapture(endEvent.pointerId);
      record.dragging = false;
      if (endEvent.type === 'pointercancel') {
        this.move(record, before);
      } else if (drawn) {
        this.commit(record);
      } else {
        // A click: the box (its size kept) goes where the click was.
        const side = boxSide(before);
        this.move(record, squareBox(anchor.x - side / 2, anchor.y - side / 2, side, this.width, this.height));
      }
      this.entry.pendingBox = this.isPending(record) ? record.box : this.entry.pendingBox;
      record.element.focus({ preventScroll: true });
    };
    this.stack.addEventListener('pointermove', onMove);
    this.stack.addEventListener('pointerup', onEnd);
    this.stack.addEventListener('pointercancel', onEnd);
  }

  onKey(event, record) {
    const step = this.keyStep(event.shiftKey);
    const [x0, y0] = record.box;
    const side = boxSide(record.box);
    let box = null;
    switch (event.key) {
      case 'ArrowLeft': box = squareBox(x0 - step, y0, side, this.width, this.height); break;
      case 'ArrowRight': box = squareBox(x0 + step, y0, side, this.width, this.height); break;
      case 'ArrowUp': box = squareBox(x0, y0 - step, side, this.width, this.height); break;
      case 'ArrowDown': box = squareBox(x0, y0 + step, side, this.width, this.height); break;
      case '+': case '=': case '-': case '_': {
        const grow = event.key === '+' || event.key === '=' ? 2 * step : -2 * step;
        const limit = Math.min(this.width, this.height);
        const next = Math.min(limit, side + grow);
        box = squareBox(x0 - (next - side) / 2, y0 - (next - side) / 2, next, this.width, this.height);
        break;
      }
      case 'Enter':
        event.preventDefault();
        this.commit(record, { force: true });
        return;
      case 'Escape':
        event.preventDefault();
        clearTimeout(record.timer);
        record.timer = null;
        if (this.isPending(record)) this.removeNewBox();
        else if (record.scored) this.move(record, record.scored);
        return;
      default:
        return;
    }
    event.preventDefault();
    this.move(record, box);
    if (this.isPending(record)) this.entry.pendingBox = box;
    clearTimeout(record.timer);
    record.timer = setTimeout(() => this.commit(record), KEY_RESCORE_DELAY_MS);
  }

  /** Scores the knee again from the box shown, unless that is the box it was scored with. */
  commit(record, { force = false } = {}) {
    clearTimeout(record.timer);
    record.timer = null;
    const pending = this.isPending(record);
    if (pending) this.entry.pendingBox = record.box;
    if (!force && !pending && sameBox(record.box, record.scored)) return;
    if (!force && record.submitted && sameBox(record.box, record.submitted)) return;
    record.submitted = record.box;
    rescoreKnee(this.entry, record.index, record.box);
  }

  /** Offers the new knee's box: a square in the middle, focused for the keys; a drag on the picture draws one. */
  placeNewBox() {
    const index = this.entry.summary.knees.length;
    let record = this.records[index];
    if (!record) {
      const side = Math.round(Math.min(this.width, this.height) / 3);
      const box = squareBox((this.width - side) / 2, (this.height - side) / 2, side, this.width, this.height);
      this.entry.pendingBox = box;
      record = this.addRecord(index, box, null);
    }
    this.drawing = true;
    this.updateTools();
    record.element.focus();
  }

  removeNewBox() {
    const index = this.entry.summary.knees.length;
    this.records[index]?.element.remove();
    this.records.length = Math.min(this.records.length, index);
    this.entry.pendingBox = null;
    this.drawing = false;
    this.updateTools();
    this.drawButton.focus();
  }

  updateTools() {
    const count = this.entry.summary.knees.length;
    const hasNew = Boolean(this.records[count]);
    this.drawing ||= hasNew;
    // Two knees fit a film; a third box would be a mistake. A film without a knee found gets the offer first.
    this.tools.hidden = count >= 2 && !hasNew;
    this.drawButton.textContent = count === 0 ? "Draw the knee's box" : "Add a missed knee's box";
    this.hint.hidden = !this.drawing;
    this.stack.classList.toggle('drawing', this.drawing);
    if (count > 0) this.notice.hidden = true;
  }

  setBusy(index, busy) {
    this.records[index]?.element.classList.toggle('busy', busy);
    const section = this.kneeSection(index);
    if (section) {
      section.classList.toggle('rescoring', busy);
      section.setAttribute('aria-busy', String(busy));
      section.querySelector('.rescoring-note').hidden = !busy;
    }
  }

  kneeSection(index) {
    return this.view.querySelector(`.knees > .knee[data-index="${index}"]`);
  }

  /** Knee `index` has a new result from `submitted`: its section is replaced, its box shows what the core used. */
  scored(index, knee, images, submitted) {
    const record = this.records[index] ?? this.addRecord(index, knee.box, knee);
    record.scored = knee.box;
    record.submitted = null;
    // The core squares the box and keeps it inside the image: the box shows what was scored, unless it is being
    // moved on (a drag, or keys whose own re-score is still to come).
    if (sameBox(record.box, submitted) || (!record.timer && !record.dragging)) this.move(record, knee.box);
    this.describe(record, knee);
    const section = renderKnee(knee, images, index);
    const old = this.kneeSection(index);
    if (old) old.replaceWith(section);
    else this.view.querySelector('.knees').append(section);
    if (!this.records[this.entry.summary.knees.length]) this.drawing = false;
    this.updateTools();
  }

  failed(index) {
    const record = this.records[index];
    if (!record) return;
    record.submitted = null;
    if (!this.isPending(record) && record.scored) this.move(record, record.scored);
  }

  /** The keys' pending re-scores are sent now; the view is about to go. */
  dispose() {
    for (const record of this.records) {
      if (record?.timer) this.commit(record);
    }
  }
}

/**
 * Scores knee `index` of a file again from a box a person set (index === its number of knees adds one), in the
 * worker. The latest box of a knee wins: an answer for an older box of the same knee is dropped.
 */
async function rescoreKnee(entry, index, box) {
  entry.boxRequests ??= [];
  const token = (entry.boxRequests[index] ?? 0) + 1;
  entry.boxRequests[index] = token;
  const shown = () => (shownFile?.entry === entry ? shownFile : null);
  shown()?.setBusy(index, true);
  announce(`Scoring the knee again from its box in ${entry.name}…`);
  let reply;
  try {
    const buffer = await entry.file.arrayBuffer();
    reply = await request('set-box', { fileId: entry.id, name: entry.name, buffer, index, box, boxes: handBoxes(entry) }, [buffer]);
  } catch {
    reply = { error: 'the file could not be read from this device' };
  }
  if (entry.boxRequests[index] !== token || !entry.summary?.ok) return;
  shown()?.setBusy(index, false);
  if (reply.error) {
    shown()?.failed(index);
    announce(`The box could not be used: ${readableError(reply.error)}`, true);
    return;
  }
  const knees = [...entry.summary.knees];
  const added = index >= knees.length;
  knees[index] = reply.knee;
  entry.summary = fileResult(entry.name, knees, metadataOf(entry.summary));
  entry.views ??= [];
  entry.views[index] = reply.view;
  if (added) entry.pendingBox = null;
  shown()?.scored(index, reply.knee, reply.view, box);
  if (state.entries.length > 1) renderTable();
  announce(`${entry.name}: ${kneeSentence(reply.knee)}`);
}

// ---------------------------------------------------------------------------------------------
// CSV export (built here; nothing is uploaded)

function csvField(value) {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function resultsCsv() {
  // box: the knee's square in pixels of the decoded image, "x0 y0 x1 y1" (half-open).
  const header = ['file', 'knee', 'p_oa', 'oa', 'kl_grade', 'kl_set', 'kl0', 'kl1', 'kl2', 'kl3', 'kl4',
    'in_distribution', 'ood_score', 'status', 'box', 'box_set_by_hand'];
  const lines = sortedRows().map((row) => {
    const knee = row.kneeResult;
    return [row.entry.name, row.knee, knee?.p_oa, knee?.oa, knee?.kl_grade, knee?.kl_set?.join(' '),
      ...(knee?.kl_probs ?? ['', '', '', '', '']),
      knee?.in_distribution, knee?.ood_score, row.status, knee?.box?.join(' '), knee ? Boolean(knee.by_hand) : '']
      .map(csvField).join(',');
  });
  return `${[header.join(','), ...lines].join('\r\n')}\r\n`;
}

elements.exportCsv.addEventListener('click', () => {
  const url = URL.createObjectURL(new Blob([resultsCsv()], { type: 'text/csv' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = 'knee-oa-results.csv';
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  announce('The results were saved as knee-oa-results.csv.');
});

// ---------------------------------------------------------------------------------------------
// Service worker: offline use, cross-origin isolation on plain static hosts, update prompt

async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  if (self.crossOriginIsolated) sessionStorage.removeItem(ISOLATION_RELOAD_KEY);
  let updateAccepted = false;

  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // Reload when the user accepted an update, or once on a first visit to a host that does not
    // send COOP/COEP itself: the service worker adds them, making the reloaded page isolated.
    const needsIsolation = !hadController && !self.crossOriginIsolated && !sessionStorage.getItem(ISOLATION_RELOAD_KEY);
    if (needsIsolation) sessionStorage.setItem(ISOLATION_RELOAD_KEY, '1');
    if (updateAccepted || needsIsolation) window.location.reload();
  });

  // Installing downloads the app again into the offline cache. On a first visit that would compete
  // with loading the model, so an isolated page waits for the model; a page that is not isolated
  // registers at once, because only a reload under the worker's headers gives it threads.
  if (self.crossOriginIsolated) await modelSettledPromise;
  let registration;
  try {
    registration = await navigator.serviceWorker.register('sw.js');
  } catch {
    return; // Works without offline support, e.g. in private windows that forbid service workers.
  }
  const offerUpdate = (waiting) => {
    elements.updateBanner.hidden = false;
    elements.updateReload.onclick = () => {
      updateAccepted = true;
      waiting.postMessage({ type: 'skip-waiting' });
    };
  };
  if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
  registration.addEventListener('updatefound', () => {
    const installing = registration.installing;
    installing?.addEventListener('statechange', () => {
      if (installing.state === 'installed' && navigator.serviceWorker.controller) offerUpdate(installing);
    });
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') registration.update().catch(() => {});
  });
}

registerServiceWorker();
