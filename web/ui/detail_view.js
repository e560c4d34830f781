// The detail view (#detail): one file's result, as the #file-template article. A file that could not be checked
// shows the picture as the browser draws it and why; a checked file its DICOM facts, the whole image with its
// knees' boxes (box_editor.js) and a section per knee (knee_view.js).

import { BoxEditor } from './box_editor.js';
import { renderKnee } from './knee_view.js';
import { hasNoKnee } from './page_state.js';
import { dicomFacts, readableError } from './wording.js';

const detail = document.querySelector('#detail');
const fileTemplate = document.querySelector('#file-template');

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

/** A checked file as shown: its knees' sections and, once its pictures are there, the box editor over them. */
class ShownFile {
  constructor(entry, view, { card, squareBox, rescore }) {
    this.entry = entry;
    this.view = view;
    this.card = card;
    const notice = view.querySelector('.no-knee-notice');
    if (hasNoKnee(entry)) {
      notice.hidden = false;
      notice.textContent = entry.summary.notice;
    }
    const knees = entry.summary.knees.map((knee, i) => renderKnee(knee, entry.views?.[i], i, card));
    view.querySelector('.knees').replaceChildren(...knees);
    // Without its pictures (being made again) a file shows no boxes to move.
    this.editor = entry.overview && entry.image
      ? new BoxEditor(entry, view, { squareBox, rescore: (index, box) => rescore(entry, index, box) })
      : null;
  }

  kneeSection(index) {
    return this.view.querySelector(`.knees > .knee[data-index="${index}"]`);
  }

  setBusy(index, busy) {
    this.editor?.setBusy(index, busy);
    const section = this.kneeSection(index);
    if (section) {
      section.classList.toggle('rescoring', busy);
      section.setAttribute('aria-busy', String(busy));
      section.querySelector('.rescoring-note').hidden = !busy;
    }
  }

  /** Knee `index` has a new result from `submitted`: its section is replaced, its box shows what the core used. */
  scored(index, knee, images, submitted) {
    this.editor?.scored(index, knee, submitted);
    const section = renderKnee(knee, images, index, this.card);
    const old = this.kneeSection(index);
    if (old) old.replaceWith(section);
    else this.view.querySelector('.knees').append(section);
  }

  failed(index) {
    this.editor?.failed(index);
  }

  dispose() {
    this.editor?.dispose();
  }
}

export class DetailView {
  /**
   * `squareBox(box, width, height)` resolves with the core's square of a proposed box; `rescore(entry, index, box)`
   * scores a knee again from a box a person set; `printReport(entry, view)` prints one file's report.
   */
  constructor({ squareBox, rescore, printReport }) {
    this.squareBox = squareBox;
    this.rescore = rescore;
    this.printReport = printReport;
    this.shown = null;
  }

  /** The shown file's view when `entry` is the one shown, else null. */
  shownFor(entry) {
    return this.shown?.entry === entry ? this.shown : null;
  }

  focusHeading() {
    detail.querySelector('h3')?.focus();
  }

  /** Shows `entry` (undefined: nothing); `card` words the thresholds and coverage. */
  show(entry, card) {
    if (!entry || entry.status === 'waiting' || entry.status === 'working') {
      const message = document.createElement('p');
      message.textContent = entry ? `Checking ${entry.name}…` : '';
      detail.replaceChildren(message);
      return;
    }
    const view = fileTemplate.content.firstElementChild.cloneNode(true);
    view.dataset.file = entry.name;
    const heading = view.querySelector('.file-name');
    heading.textContent = entry.series ? `${entry.name} (${entry.series})` : entry.name;
    heading.tabIndex = -1;
    this.shown?.dispose();
    this.shown = null;
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
      this.shown = new ShownFile(entry, view, { card, squareBox: this.squareBox, rescore: this.rescore });
      view.querySelector('.file-actions').hidden = false;
      view.querySelector('.print-report').addEventListener('click', () => this.printReport(entry, view));
    }
    detail.replaceChildren(view);
  }
}
