// A knee's box on the page: [x0, y0, x1, y1] in pixels of the decoded image, half-open, exactly as the core, the
// worker and the CLI's JSON spell it. The core alone squares and places a box (its squareBox, asked through the
// worker); the page only compares boxes and writes them out as text, edges in that same order.

export function sameBox(a, b) {
  return Boolean(a && b) && a.length === 4 && a.every((edge, i) => edge === b[i]);
}

export function boxSide(box) {
  return Math.max(box[2] - box[0], box[3] - box[1]);
}

/** A box in a data-box attribute: "x0,y0,x1,y1". */
export function boxAttribute(box) {
  return box ? box.join(',') : '';
}

/** A box in a CSV field, which commas would split: "x0 y0 x1 y1". */
export function boxCsvText(box) {
  return box?.join(' ');
}
