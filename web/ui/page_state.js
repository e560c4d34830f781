// What the page holds between events: the model card, the files of the latest selection (each an entry: its File,
// status, result and pictures), which one is shown, and how the table is sorted.

export const state = {
  card: null,
  entries: [],
  selectedId: null,
  sort: { key: null, direction: 'ascending' },
  selection: 0,      // counts selections: a newer one replaces the files being checked
  maxFileBytes: 0,   // the core's file-size limit, from the worker once ready (0: the worker is asked about every file)
};

export function entryById(id) {
  return state.entries.find((candidate) => candidate.id === id);
}

/** A file that decoded but where the core found no knee joint (the page offers to draw its box). */
export function hasNoKnee(entry) {
  return Boolean(entry.summary?.ok && entry.summary.knees.length === 0);
}
