// The page: input, results and the service worker. All classification runs in worker.js; this
// module only moves files there and draws what comes back, so the page stays responsive.

import { failedFileResult } from './engine.js';

const KL_GRADE_NAMES = ['none', 'doubtful', 'minimal', 'moderate', 'severe'];
const SIDE_LABELS = { single: 'single', left: 'left half', right: 'right half' };
const KNEE_TITLES = { single: 'Knee', left: 'Knee on the left half of the image', right: 'Knee on the right half of the image' };
// The core refuses larger inputs anyway (its default limit); refusing here avoids reading them into memory.
const MAX_FILE_BYTES = 100 * 1024 * 1024;
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
};

// ---------------------------------------------------------------------------------------------
// Worker

const worker = new Worker(new URL('worker.js', import.meta.url), { type: 'module' });
const pendingRequests = new Map();
let nextRequestId = 1;

function request(type, payload = {}, transfer = []) {
  const requestId = nextRequestId++;
  return new Promise((resolve) => {
    pendingRequests.set(requestId, resolve);
    worker.postMessage({ type, requestId, ...payload }, transfer);
  });
}

let modelSettled;
const modelSettledPromise = new Promise((resolve) => { modelSettled = resolve; });

const workerEvents = {
  about: ({ device }) => showDevice(device),
  card: ({ card }) => showCard(card),
  'model-status': ({ message }) => setModelStatus(message),
  'model-progress': ({ loaded, total }) => showModelProgress(loaded, total),
  ready: (message) => { showModelReady(message); modelSettled(); },
  'model-error': ({ message }) => { showModelError(message); modelSettled(); },
  reply: ({ requestId, ...reply }) => {
    pendingRequests.get(requestId)?.(reply);
    pendingRequests.delete(requestId);
  },
};

worker.addEventListener('message', (event) => workerEvents[event.data.type]?.(event.data));
worker.addEventListener('error', (event) => {
  event.preventDefault();
  showModelError(`The engine could not start (${event.message || 'this browser may be too old'}).`);
});
worker.postMessage({ type: 'load' });

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

function showModelReady({ fromCache, storedNote, seconds, device }) {
  elements.modelDownload.hidden = true;
  elements.retryModel.hidden = true;
  const how = fromCache ? 'loaded from this device' : 'downloaded, verified and stored on this device';
  setModelStatus(`Model ready: ${how} in ${seconds.toFixed(1)} s. ${storedNote}`.trim());
  document.body.dataset.modelReady = 'true';
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
$('#choose-files').addEventListener('click', () => elements.fileInput.click());
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
  checkFiles(event.dataTransfer?.files);
});
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

async function checkFiles(fileList) {
  const files = Array.from(fileList ?? []);
  if (files.length === 0) {
    announce('Nothing to check: no file was received.', true);
    return;
  }
  state.selection += 1;
  const selection = state.selection;
  state.entries = files.map((file, i) => ({
    id: `${selection}-${i}`, file, name: file.name || 'pasted image', status: 'waiting', summary: null, views: null,
  }));
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
    announce(`Checked ${files.length} files: ${files.length - failed} classified`
      + `${failed ? `, ${failed} could not be read` : ''}. Results are in the table below.`, failed > 0);
  }
}

async function classifyEntry(entry) {
  let buffer;
  if (entry.file.size > MAX_FILE_BYTES) {
    entry.summary = failedFileResult(entry.name, `the file is too large (${megabytes(entry.file.size)}); `
      + `the limit is ${megabytes(MAX_FILE_BYTES)}`);
  } else {
    try {
      buffer = await entry.file.arrayBuffer();
    } catch {
      entry.summary = failedFileResult(entry.name, 'the file could not be read from this device');
    }
  }
  if (buffer) {
    const reply = await request('classify', { name: entry.name, buffer }, [buffer]);
    entry.summary = reply.error ? failedFileResult(entry.name, reply.error) : reply.summary;
    entry.views = reply.views ?? null;
    entry.milliseconds = reply.milliseconds;
  }
  entry.status = entry.summary.ok ? 'done' : 'failed';
}

function forgetOldViews() {
  const withViews = state.entries.filter((entry) => entry.views && entry.id !== state.selectedId);
  for (const entry of withViews.slice(0, Math.max(0, withViews.length - MAX_FILES_WITH_VIEWS))) entry.views = null;
}

function kneeSentence(knee) {
  const title = KNEE_TITLES[knee.side] ?? 'Knee';
  if (!knee.in_distribution) return `${title}: this does not look like a knee X-ray.`;
  return `${title}: ${percent(knee.p_oa)} chance of osteoarthritis, ${knee.oa ? 'osteoarthritis likely' : 'osteoarthritis unlikely'}.`;
}

function announceEntry(entry) {
  if (!entry.summary.ok) {
    announce(`Could not check ${entry.name}: ${readableError(entry.summary.error)}`, true);
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
    return entry.summary.knees.map((knee) => ({
      entry,
      knee: SIDE_LABELS[knee.side] ?? knee.side,
      kneeResult: knee,
      p_oa: knee.in_distribution ? knee.p_oa : null,
      kl_grade: knee.in_distribution ? knee.kl_grade : null,
      status: !knee.in_distribution ? 'Not a knee X-ray' : (knee.oa ? 'OA likely' : 'OA unlikely'),
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
  if (entry?.status === 'done' && !entry.views) {
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
  heading.textContent = entry.name;
  heading.tabIndex = -1;
  drawOriginal(entry.file, view.querySelector('.original'));
  if (!entry.summary.ok) {
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
    const knees = entry.summary.knees.map((knee, i) => renderKnee(knee, entry.views?.[i]));
    view.querySelector('.knees').replaceChildren(...knees);
  }
  elements.detail.replaceChildren(view);
}

const LATERALITY_NAMES = { L: 'left knee', R: 'right knee', B: 'both knees', U: 'side not stated' };

/** What a DICOM header added to the result (laterality, pixel spacing), in words, or ''. */
function dicomFacts(summary) {
  const facts = [];
  if (summary.laterality) facts.push(`laterality ${LATERALITY_NAMES[summary.laterality] ?? summary.laterality}`);
  if (summary.pixel_spacing_mm) facts.push(`pixel spacing ${summary.pixel_spacing_mm.join(' × ')} mm`);
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

function renderKnee(knee, images) {
  const view = elements.kneeTemplate.content.firstElementChild.cloneNode(true);
  view.dataset.side = knee.side;
  view.dataset.pOa = String(knee.p_oa);
  view.dataset.inDistribution = String(knee.in_distribution);
  view.querySelector('.knee-title').textContent = KNEE_TITLES[knee.side] ?? 'Knee';

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
    view.querySelector('.kl-bars').replaceChildren(...knee.kl_probs.map((probability, grade) => {
      const item = document.createElement('li');
      item.classList.toggle('most-likely', grade === knee.kl_grade);
      const label = document.createElement('span');
      label.textContent = `KL ${grade} · ${KL_GRADE_NAMES[grade]}`;
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
// CSV export (built here; nothing is uploaded)

function csvField(value) {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function resultsCsv() {
  const header = ['file', 'knee', 'p_oa', 'oa', 'kl_grade', 'kl0', 'kl1', 'kl2', 'kl3', 'kl4',
    'in_distribution', 'ood_score', 'status'];
  const lines = sortedRows().map((row) => {
    const knee = row.kneeResult;
    return [row.entry.name, row.knee, knee?.p_oa, knee?.oa, knee?.kl_grade, ...(knee?.kl_probs ?? ['', '', '', '', '']),
      knee?.in_distribution, knee?.ood_score, row.status].map(csvField).join(',');
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
