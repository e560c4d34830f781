// The one message protocol between the page (ui/engine_bridge.js) and its engine worker (worker.js); both import
// the names from here. Every message is { type, ...fields }.
//
// A request carries a requestId and is answered by one REPLY with the same requestId: the fields below, or
// { error } (a sentence) when it failed.
//   CLASSIFY     { fileId, name, buffer, boxes? } → { summary, image: {width, height}, overview: {width, height,
//                grey}, views, milliseconds, timings }; a file without a knee joint has summary.knees [] and
//                summary.notice
//   SET_BOX      { fileId, name, buffer, index, box, boxes? } → { knee, view, milliseconds, timings }: knee `index`
//                (index === its number of knees adds one) cropped from `box` and scored alone
//   SQUARE_BOX   { box, width, height } → { box }: the square the core crops for a box a person proposes in a
//                width × height image, which the page draws while the box moves
//   CLEAR_MODEL  {} → { removed }
//   STATS        {} → { filesChecked, coreHeapBytes }
//   FILE_SIZE    { bytes } → { problem }: the core's sentence about a file that size, or ''
//   DESCRIBE     { buffer } → { described }: the core's describeDicom, { ok, error, facts }
//   DIRECTORY    { buffer } → { directory }: the core's readDicomdir, { ok, error, entries }
// `boxes` lists the boxes a person set on that file before ([{ index, box }]): the core holds one image at a time,
// so a file other than the last one classified is prepared again from `buffer` with those boxes first. A box is
// [x0, y0, x1, y1] in pixels of the decoded image, half-open, as the core gives it.
//
// The page also sends LOAD ({}; no reply): start, or retry, loading the model.
// The worker sends on its own: ABOUT { device } once its module ran; CARD { card }; MODEL_STATUS { message };
// MODEL_PROGRESS { loaded, total }; READY { fromCache, storedNote, seconds, device, stages, timeOrigin, maxFileBytes,
// selfTest }; MODEL_ERROR { message }.

export const REQUESTS = Object.freeze({
  CLASSIFY: 'classify',
  SET_BOX: 'set-box',
  SQUARE_BOX: 'square-box',
  CLEAR_MODEL: 'clear-model',
  STATS: 'stats',
  FILE_SIZE: 'file-size',
  DESCRIBE: 'describe',
  DIRECTORY: 'directory',
});

export const LOAD = 'load';

export const EVENTS = Object.freeze({
  ABOUT: 'about',
  CARD: 'card',
  MODEL_STATUS: 'model-status',
  MODEL_PROGRESS: 'model-progress',
  READY: 'ready',
  MODEL_ERROR: 'model-error',
  REPLY: 'reply',
});
