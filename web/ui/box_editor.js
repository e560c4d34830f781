// The whole image of a file with a box on each knee: moving and resizing a box (pointer or keys), drawing one
// where no knee was found, and handing a box to be scored once a person lets go of it. The core squares and
// places every box (`squareBox`, asked through the worker); the editor proposes and draws what comes back.

import { boxAttribute, boxSide, sameBox } from './box.js';
import { boxDescription, boxLabel } from './wording.js';
import { paint } from './knee_view.js';

// After the last arrow or +/- key on a box, the knee is scored again once the keys rest this long.
const KEY_RESCORE_DELAY_MS = 600;
// Arrow keys move a box by this fraction of the image's shorter side; with Shift ten times as far.
const KEY_STEP_FRACTION = 0.01;
// A pointer that moved less than this many CSS pixels before it was let go clicked.
const CLICK_SLOP_PX = 3;

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

export class BoxEditor {
  /**
   * `entry`: the file shown (its summary, image size, overview picture and any new box not scored yet);
   * `view`: its #file-template article. `squareBox(box, width, height)` resolves with the square the core makes
   * of a proposed box, or null; `rescore(index, box)` scores knee `index` again from `box` (index === the
   * number of knees adds one).
   */
  constructor(entry, view, { squareBox, rescore }) {
    this.entry = entry;
    this.squareBox = squareBox;
    this.rescore = rescore;
    this.stack = view.querySelector('.overview-stack');
    this.layer = view.querySelector('.overview-boxes');
    this.tools = view.querySelector('.box-tools');
    this.drawButton = view.querySelector('.draw-box');
    this.hint = view.querySelector('.draw-hint');
    this.notice = view.querySelector('.no-knee-notice');
    // Per knee index (and the new knee's box at the end): { element, label, box, scored, timer, queue, generation }.
    this.records = [];
    this.drawing = false;
    const { width, height, grey } = entry.overview;
    paintGrey(view.querySelector('.overview-canvas'), grey, width, height);
    this.stack.style.aspectRatio = `${width} / ${height}`;
    this.stack.style.setProperty('--aspect', (width / height).toFixed(4));
    this.stack.style.width = `min(100%, calc(70vh * ${(width / height).toFixed(4)}))`;
    view.querySelector('.overview').hidden = false;
    this.stack.addEventListener('pointerdown', (event) => this.startDrawing(event));
    this.drawButton.addEventListener('click', () => this.placeNewBox());
    entry.summary.knees.forEach((knee, index) => this.addRecord(index, knee.box, knee));
    if (entry.pendingBox) this.addRecord(entry.summary.knees.length, entry.pendingBox, null);
    // The box "Draw the knee's box" offers, a third of the shorter side in the middle, is squared ahead of the click
    // so that it appears at once; a film with two knees gets no offer.
    const side = Math.round(Math.min(this.width, this.height) / 3);
    const left = (this.width - side) / 2;
    const top = (this.height - side) / 2;
    this.offeredBox = entry.summary.knees.length < 2
      ? squareBox([left, top, left + side, top + side], this.width, this.height) : Promise.resolve(null);
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
    const record = {
      index, element, label, box, scored: knee ? knee.box : null, timer: null, queue: Promise.resolve(), generation: 0,
    };
    this.records[index] = record;
    this.describe(record, knee);
    if (box) this.place(record);
    else element.hidden = true;  // drawn once the core has squared its first box
    element.addEventListener('pointerdown', (event) => this.startDrag(event, record, event.target === handle ? 'resize' : 'move'));
    element.addEventListener('keydown', (event) => this.onKey(event, record));
    this.layer.append(element);
    return record;
  }

  describe(record, knee) {
    record.element.classList.toggle('pending', !knee);
    record.element.classList.toggle('by-hand', Boolean(knee?.by_hand));
    record.label.textContent = boxLabel(knee);
    record.element.setAttribute('aria-label', boxDescription(knee));
  }

  place(record) {
    const [x0, y0, x1, y1] = record.box;
    const style = record.element.style;
    style.left = `${(x0 / this.width) * 100}%`;
    style.top = `${(y0 / this.height) * 100}%`;
    style.width = `${((x1 - x0) / this.width) * 100}%`;
    style.height = `${((y1 - y0) / this.height) * 100}%`;
    record.element.hidden = false;
    record.element.dataset.box = boxAttribute(record.box);
    record.element.dataset.step = String(this.keyStep(false));
  }

  move(record, box) {
    record.box = box;
    this.place(record);
  }

  /**
   * Moves the box to the core's square of `propose(box)`, proposed from the box as it is once the earlier
   * changes are drawn, so that quick keys add up. Resolves with the box drawn, or null (dropped: the core refused
   * the proposal, or a reset came first).
   */
  reshape(record, propose) {
    return this.afterChanges(record, async () => {
      const generation = record.generation;
      const box = await this.squareBox(propose(record.box), this.width, this.height);
      if (!box || generation !== record.generation) return null;
      this.move(record, box);
      return box;
    });
  }

  /** Runs `step` once the box's earlier changes are drawn; a reset (dropChanges) skips it. */
  afterChanges(record, step) {
    const generation = record.generation;
    const run = record.queue.then(() => (generation === record.generation ? step() : null));
    record.queue = run.catch(() => null);
    return run;
  }

  /** Forgets the box's changes still to be drawn: a reset wins over them. */
  dropChanges(record) {
    record.generation += 1;
    record.queue = Promise.resolve();
    clearTimeout(record.timer);
    record.timer = null;
  }

  isPending(record) {
    return record.index >= this.entry.summary.knees.length;
  }

  /** Runs `onMove(pointerEvent)` for each move of a pointer captured by `target` until it is let go: `onEnd(event)`. */
  followPointer(target, event, onMove, onEnd) {
    target.setPointerCapture(event.pointerId);
    const end = (endEvent) => {
      target.removeEventListener('pointermove', onMove);
      target.removeEventListener('pointerup', end);
      target.removeEventListener('pointercancel', end);
      if (target.hasPointerCapture(endEvent.pointerId)) target.releasePointerCapture(endEvent.pointerId);
      onEnd(endEvent);
    };
    target.addEventListener('pointermove', onMove);
    target.addEventListener('pointerup', end);
    target.addEventListener('pointercancel', end);
  }

  startDrag(event, record, mode) {
    if (event.button !== 0) return;
    event.preventDefault();
    event.stopPropagation();
    record.element.focus({ preventScroll: true });
    clearTimeout(record.timer);
    record.timer = null;
    record.dragging = true;
    const start = { x: event.clientX, y: event.clientY, box: record.box, scale: this.scale() };
    let moved = false;
    let latest = null;  // the last pointer position not squared yet
    const propose = () => {
      const dx = (latest.clientX - start.x) * start.scale;
      const dy = (latest.clientY - start.y) * start.scale;
      latest = null;
      const [x0, y0, x1, y1] = start.box;
      if (mode === 'move') return [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
      // The corner follows the pointer; the opposite corner stays.
      const side = Math.min(Math.max(x1 - x0 + dx, y1 - y0 + dy), this.width - x0, this.height - y0);
      return [x0, y0, x0 + side, y0 + side];
    };
    const onMove = (moveEvent) => {
      // Moves faster than the core answers are taken together: the box follows the newest.
      const queued = latest !== null;
      latest = moveEvent;
      if (queued) return;
      this.reshape(record, propose).then((box) => { moved ||= Boolean(box) && !sameBox(box, start.box); });
    };
    const onEnd = (endEvent) => this.afterChanges(record, () => {
      record.dragging = false;
      if (endEvent.type === 'pointercancel') this.move(record, start.box);
      // commit() skips a box that was scored already; a new knee's box is only scored once it was moved.
      else if (moved || !this.isPending(record)) this.commit(record);
    });
    this.followPointer(record.element, event, onMove, onEnd);
  }

  /** In drawing mode, a drag on the picture draws the new knee's box; a click moves it there. */
  startDrawing(event) {
    if (!this.drawing || event.button !== 0 || event.target.closest('.knee-box')) return;
    event.preventDefault();
    const rect = this.stack.getBoundingClientRect();
    const scale = this.width / rect.width;
    const anchor = { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale };
    const index = this.entry.summary.knees.length;
    let record = this.records[index];
    if (!record) {
      record = this.addRecord(index, null, null);
      this.reshape(record, () => [anchor.x, anchor.y, anchor.x, anchor.y]);
    }
    clearTimeout(record.timer);
    record.timer = null;
    record.dragging = true;
    let before = null;
    this.afterChanges(record, () => { before = record.box; });
    let drawn = false;
    let latest = null;
    const propose = () => {
      const dx = (latest.clientX - rect.left) * scale - anchor.x;
      const dy = (latest.clientY - rect.top) * scale - anchor.y;
      latest = null;
      const side = Math.max(Math.abs(dx), Math.abs(dy));
      const left = dx < 0 ? anchor.x - side : anchor.x;
      const top = dy < 0 ? anchor.y - side : anchor.y;
      return [left, top, left + side, top + side];
    };
    const onMove = (moveEvent) => {
      const distance = Math.hypot(moveEvent.clientX - event.clientX, moveEvent.clientY - event.clientY);
      if (!drawn && distance < CLICK_SLOP_PX) return;
      drawn = true;
      const queued = latest !== null;
      latest = moveEvent;
      if (!queued) this.reshape(record, propose);
    };
    const onEnd = (endEvent) => {
      const finish = () => {
        record.dragging = false;
        if (this.isPending(record)) this.entry.pendingBox = record.box;
        record.element.focus({ preventScroll: true });
      };
      if (endEvent.type === 'pointercancel') {
        this.afterChanges(record, () => { if (before) this.move(record, before); finish(); });
      } else if (drawn) {
        this.afterChanges(record, () => { finish(); this.commit(record); });
      } else {
        // A click: the box (its size kept) goes where the click was.
        this.reshape(record, (box) => {
          const half = boxSide(box) / 2;
          return [anchor.x - half, anchor.y - half, anchor.x + half, anchor.y + half];
        });
        this.afterChanges(record, finish);
      }
    };
    this.followPointer(this.stack, event, onMove, onEnd);
  }

  onKey(event, record) {
    const step = this.keyStep(event.shiftKey);
    const shift = (dx, dy) => ([x0, y0, x1, y1]) => [x0 + dx, y0 + dy, x1 + dx, y1 + dy];
    const grow = (by) => ([x0, y0, x1, y1]) => [x0 - by / 2, y0 - by / 2, x1 + by / 2, y1 + by / 2];
    const proposals = {
      ArrowLeft: shift(-step, 0),
      ArrowRight: shift(step, 0),
      ArrowUp: shift(0, -step),
      ArrowDown: shift(0, step),
      '+': grow(2 * step),
      '=': grow(2 * step),
      '-': grow(-2 * step),
      _: grow(-2 * step),
    };
    if (event.key === 'Enter') {
      event.preventDefault();
      this.afterChanges(record, () => this.commit(record, { force: true }));
      return;
    }
    if (event.key === 'Escape') {
      event.preventDefault();
      this.dropChanges(record);
      if (this.isPending(record)) this.removeNewBox();
      else if (record.scored) this.move(record, record.scored);
      return;
    }
    const propose = proposals[event.key];
    if (!propose) return;
    event.preventDefault();
    this.reshape(record, propose).then((box) => {
      if (box && this.isPending(record)) this.entry.pendingBox = box;
    });
    clearTimeout(record.timer);
    record.timer = setTimeout(() => this.afterChanges(record, () => this.commit(record)), KEY_RESCORE_DELAY_MS);
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
    this.rescore(record.index, record.box);
  }

  /** Offers the new knee's box: a square in the middle, focused for the keys; a drag on the picture draws one. */
  async placeNewBox() {
    const index = this.entry.summary.knees.length;
    let record = this.records[index];
    if (!record) {
      const box = await this.offeredBox;
      if (!box) return;
      record = this.records[index] ?? this.addRecord(index, box, null);
      this.entry.pendingBox = record.box;
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
  }

  /** Knee `index` has a new result from `submitted`: its box shows what the core used. */
  scored(index, knee, submitted) {
    const record = this.records[index] ?? this.addRecord(index, knee.box, knee);
    record.scored = knee.box;
    record.submitted = null;
    // The box shows what was scored, unless it is being moved on (a drag, or keys whose own re-score is still to
    // come).
    if (sameBox(record.box, submitted) || (!record.timer && !record.dragging)) this.move(record, knee.box);
    this.describe(record, knee);
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
      if (record?.timer) this.afterChanges(record, () => this.commit(record));
    }
  }
}
