// The page: it moves files to the engine worker (worker.js), where all classification runs, and draws what comes
// back, so the page stays responsive. Each part of the page is a module of ui/; this one connects them.

import { EVENTS, REQUESTS } from './protocol.js';
import { fileChecks } from './ui/checking.js';
import { DetailView } from './ui/detail_view.js';
import { downloadCsv, CSV_FILE_NAME, preparePrinting, printReport } from './ui/export.js';
import { startEngine } from './ui/engine_bridge.js';
import { watchInput } from './ui/input.js';
import {
  bindModelActions, setModelStatus, showCard, showDevice, showModelError, showModelProgress, showModelReady,
} from './ui/model_panel.js';
import { registerServiceWorker } from './ui/offline.js';
import { entryById, state } from './ui/page_state.js';
import { bindSorting, renderTable } from './ui/results_table.js';
import { announce } from './ui/status_line.js';

let modelSettled;
const modelSettledPromise = new Promise((resolve) => { modelSettled = resolve; });

const engine = startEngine({
  on: {
    [EVENTS.ABOUT]: ({ device }) => showDevice(device),
    [EVENTS.CARD]: ({ card }) => {
      state.card = card;
      showCard(card);
    },
    [EVENTS.MODEL_STATUS]: ({ message }) => setModelStatus(message),
    [EVENTS.MODEL_PROGRESS]: showModelProgress,
    [EVENTS.READY]: (message) => {
      state.maxFileBytes = message.maxFileBytes;
      showModelReady(message);
      modelSettled();
    },
    [EVENTS.MODEL_ERROR]: ({ message }) => {
      showModelError(message);
      modelSettled();
    },
  },
  restarting: () => setModelStatus('The engine stopped unexpectedly; starting it again…', true),
  failedToStart: (reason) => showModelError(`The engine could not start (${reason}).`),
});

bindModelActions({
  load: () => engine.load(),
  clearStoredModel: () => engine.request(REQUESTS.CLEAR_MODEL),
});

/** The core's square of a box a person proposes, from the worker; null when it could not say. */
async function squareBox(box, width, height) {
  const reply = await engine.request(REQUESTS.SQUARE_BOX, { box, width, height });
  return reply.error ? null : reply.box;
}

const detail = new DetailView({
  squareBox,
  rescore: (entry, index, box) => checks.rescoreKnee(entry, index, box),
  printReport: (entry, view) => printReport(entry, view, state.card),
});

const openEntry = (id) => checks.selectEntry(id);
const batch = document.querySelector('#batch');

/** Redraws the table, and the detail view unless only another file than the shown one changed. */
function render(changedEntry = null) {
  const isBatch = state.entries.length > 1;
  batch.hidden = !isBatch;
  if (isBatch) renderTable(openEntry);
  if (!changedEntry || changedEntry.id === state.selectedId) detail.show(entryById(state.selectedId), state.card);
}

const checks = fileChecks({
  request: engine.request,
  render,
  renderTable: () => renderTable(openEntry),
  detail,
});

bindSorting(() => renderTable(openEntry));

/** A request that hands the worker's core one file and resolves with the core's { ok, error, ... } value. */
const askCore = (type, field) => async (buffer) => {
  const reply = await engine.request(type, { buffer }, [buffer]);
  return reply.error ? { ok: false, error: reply.error } : reply[field];
};

watchInput({
  checkFiles: checks.checkFiles,
  describeDicom: askCore(REQUESTS.DESCRIBE, 'described'),
  readDicomdir: askCore(REQUESTS.DIRECTORY, 'directory'),
});

document.querySelector('#export-csv').addEventListener('click', () => {
  downloadCsv();
  announce(`The results were saved as ${CSV_FILE_NAME}.`);
});

preparePrinting(() => state.card);
registerServiceWorker(modelSettledPromise);
