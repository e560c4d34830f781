// The page's side of the engine worker (../worker.js), speaking the protocol of ../protocol.js. Should the worker
// stop (an uncaught error: a crash in the core or ONNX Runtime, memory exhausted), every request it had not
// answered is answered with ENGINE_STOPPED and a fresh worker takes its place, as Squoosh's worker bridge does, so
// the app keeps working. A worker that never started is not started again.

import { EVENTS, LOAD } from '../protocol.js';

const ENGINE_STOPPED = 'the engine stopped unexpectedly while working on this and was started again; try again';

/**
 * Starts the engine worker. `on` takes the worker's own messages by EVENTS name (each gets the message), and
 * `restarting()` and `failedToStart(reason)` for a worker that stopped. Returns { request, load }: request(type,
 * payload, transfer) resolves with the reply ({ error } when the worker stopped before answering); load() asks it
 * to load the model (again).
 */
export function startEngine({ on, restarting, failedToStart }) {
  let worker = null;
  const pendingRequests = new Map();
  let nextRequestId = 1;

  function answerPendingRequests(error) {
    const pending = [...pendingRequests.values()];
    pendingRequests.clear();
    for (const settle of pending) settle({ error });
  }

  function onReply({ requestId, ...reply }) {
    pendingRequests.get(requestId)?.(reply);
    pendingRequests.delete(requestId);
  }

  function start() {
    const current = new Worker(new URL('../worker.js', import.meta.url), { type: 'module' });
    let running = false; // it ran its module and posted ABOUT
    worker = current;
    current.addEventListener('message', (event) => {
      if (current !== worker) return;
      if (event.data.type === EVENTS.ABOUT) running = true;
      if (event.data.type === EVENTS.REPLY) onReply(event.data);
      else on[event.data.type]?.(event.data);
    });
    current.addEventListener('error', (event) => {
      event.preventDefault();
      if (current !== worker) return;
      const reason = event.message || 'this browser may be too old';
      if (!running) {
        answerPendingRequests(`the engine could not start (${reason})`);
        failedToStart(reason);
        return;
      }
      current.terminate();
      answerPendingRequests(ENGINE_STOPPED);
      restarting();
      start();
    });
    current.postMessage({ type: LOAD });
  }

  start();

  return {
    request(type, payload = {}, transfer = []) {
      const requestId = nextRequestId++;
      return new Promise((resolve) => {
        pendingRequests.set(requestId, resolve);
        worker.postMessage({ type, requestId, ...payload }, transfer);
      });
    },
    load() {
      worker.postMessage({ type: LOAD });
    },
  };
}
