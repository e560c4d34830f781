// Checking files in the engine worker, one at a time, and scoring a knee again from a box a person set. Each file
// of a selection is an entry of page_state.js; its result, pictures and hand-set boxes live there.

import { failedFileResult, fileResult, dicomMetadata } from '../engine.js';
import { REQUESTS } from '../protocol.js';
import { entryById, hasNoKnee, state } from './page_state.js';
import { announce } from './status_line.js';
import { kneeSentence, readableError } from './wording.js';

// Crops and heatmaps are kept for this many files; older ones are recomputed when opened again.
const MAX_FILES_WITH_VIEWS = 24;
const UNREADABLE = 'the file could not be read from this device';

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

function announceBatch(count) {
  const failed = state.entries.filter((entry) => entry.status === 'failed').length;
  const withoutKnee = state.entries.filter(hasNoKnee).length;
  announce(`Checked ${count} files: ${count - failed - withoutKnee} classified`
    + `${withoutKnee ? `, ${withoutKnee} without a knee joint found` : ''}`
    + `${failed ? `, ${failed} could not be read` : ''}. Results are in the table below.`, failed > 0);
}

/**
 * `request(type, payload, transfer)` asks the engine worker; `render(changedEntry?)` redraws the table and, unless
 * only another file changed, the detail view; `renderTable()` the table alone; `detail` is the DetailView.
 */
export function fileChecks({ request, render, renderTable, detail }) {
  async function classifyEntry(entry) {
    let buffer;
    // The core's own limits, asked before the file is read into memory; a file within the limit the worker stated
    // when it became ready skips that round trip.
    const withinLimit = entry.file.size > 0 && entry.file.size <= state.maxFileBytes;
    const { problem, error } = withinLimit ? {} : await request(REQUESTS.FILE_SIZE, { bytes: entry.file.size });
    if (problem || error) {
      entry.summary = failedFileResult(entry.name, problem || error);
    } else {
      try {
        buffer = await entry.file.arrayBuffer();
      } catch {
        entry.summary = failedFileResult(entry.name, UNREADABLE);
      }
    }
    if (buffer) {
      // Boxes set by hand before (its pictures were dropped and are made again) are set again first.
      const reply = await request(REQUESTS.CLASSIFY,
        { fileId: entry.id, name: entry.name, buffer, boxes: handBoxes(entry) }, [buffer]);
      entry.summary = reply.error ? failedFileResult(entry.name, reply.error) : reply.summary;
      entry.views = reply.views ?? null;
      entry.overview = reply.overview ?? null;
      entry.image = reply.image ?? null;
      entry.milliseconds = reply.milliseconds;
    }
    entry.status = entry.summary.ok ? 'done' : 'failed';
  }

  /**
   * Checks files in turn. From a folder: `names` (file → its path in the folder), `series` (file → its study and
   * series, as ../dicom_folder.js words them) and the folder's sentence about its files that are not images.
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
    const summaryLine = document.querySelector('#folder-summary');
    summaryLine.textContent = folderSummary;
    summaryLine.hidden = !folderSummary;
    state.selectedId = state.entries[0].id;
    document.querySelector('#results').hidden = false;
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
    if (files.length > 1) announceBatch(files.length);
  }

  /** Shows a file; its pictures, dropped to save memory, are made again. */
  async function selectEntry(id) {
    state.selectedId = id;
    const entry = entryById(id);
    render();
    if (entry?.status === 'done' && (!entry.views || !entry.overview)) {
      const selection = state.selection;
      await classifyEntry(entry);
      if (selection === state.selection && state.selectedId === id) detail.show(entry, state.card);
    }
    detail.focusHeading();
  }

  /**
   * Scores knee `index` of a file again from a box a person set (index === its number of knees adds one), in the
   * worker. The latest box of a knee wins: an answer for an older box of the same knee is dropped.
   */
  async function rescoreKnee(entry, index, box) {
    entry.boxRequests ??= [];
    const token = (entry.boxRequests[index] ?? 0) + 1;
    entry.boxRequests[index] = token;
    detail.shownFor(entry)?.setBusy(index, true);
    announce(`Scoring the knee again from its box in ${entry.name}…`);
    let reply;
    try {
      const buffer = await entry.file.arrayBuffer();
      reply = await request(REQUESTS.SET_BOX,
        { fileId: entry.id, name: entry.name, buffer, index, box, boxes: handBoxes(entry) }, [buffer]);
    } catch {
      reply = { error: UNREADABLE };
    }
    if (entry.boxRequests[index] !== token || !entry.summary?.ok) return;
    const shown = detail.shownFor(entry);
    shown?.setBusy(index, false);
    if (reply.error) {
      shown?.failed(index);
      announce(`The box could not be used: ${readableError(reply.error)}`, true);
      return;
    }
    const knees = [...entry.summary.knees];
    const added = index >= knees.length;
    knees[index] = reply.knee;
    entry.summary = fileResult(entry.name, knees, dicomMetadata(entry.summary));
    entry.views ??= [];
    entry.views[index] = reply.view;
    if (added) entry.pendingBox = null;
    shown?.scored(index, reply.knee, reply.view, box);
    if (state.entries.length > 1) renderTable();
    announce(`${entry.name}: ${kneeSentence(reply.knee)}`);
  }

  return { checkFiles, selectEntry, rescoreKnee };
}
