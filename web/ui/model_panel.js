// The Model panel and the device line: which model, its download, whether it is ready, what this device runs it
// with, and the buttons that retry loading it or remove the stored copy.

import { megabytes, percent } from '../measures.js';
import { announce } from './status_line.js';
import { modelName } from './wording.js';

const $ = (selector) => document.querySelector(selector);
const elements = {
  status: $('#model-status'),
  download: $('#model-download'),
  progress: $('#model-progress'),
  progressText: $('#model-progress-text'),
  version: $('#model-version'),
  retry: $('#retry-model'),
  clear: $('#clear-model'),
  untrainedBanner: $('#untrained-banner'),
  about: $('#about-device'),
};

export function setModelStatus(message, isError = false) {
  elements.status.textContent = message;
  elements.status.classList.toggle('error', isError);
}

export function showCard(card) {
  elements.untrainedBanner.hidden = !card.untrained;
  elements.version.textContent = `model ${modelName(card)}` + (card.untrained ? ' (untrained placeholder)' : '');
  setModelStatus(`Model ${card.name ?? card.model_file}, ${megabytes(card.bytes)}.`);
}

export function showModelProgress({ loaded, total }) {
  elements.download.hidden = false;
  elements.progress.max = total;
  elements.progress.value = loaded;
  elements.progressText.textContent = `${megabytes(loaded)} of ${megabytes(total)} (${percent(loaded / total, 0)})`;
}

export function showModelReady({ fromCache, storedNote, seconds, device, selfTest }) {
  elements.download.hidden = true;
  elements.retry.hidden = true;
  const how = fromCache ? 'loaded from this device' : 'downloaded, verified and stored on this device';
  const checked = selfTest.checked ? ' This device computed the model\'s known test case correctly.' : '';
  setModelStatus(`Model ready: ${how} in ${seconds.toFixed(1)} s.${checked} ${storedNote}`.trim());
  document.body.dataset.modelReady = 'true';
  document.body.dataset.selfTest = selfTest.checked ? 'passed' : 'none';
  showDevice(device);
}

export function showModelError(message) {
  elements.download.hidden = true;
  elements.retry.hidden = false;
  setModelStatus(message, true);
  document.body.dataset.modelReady = 'false';
  announce(message, true);
}

export function showDevice(device) {
  const threadText = device.threads > 1
    ? `${device.threads} threads (cross-origin isolated)`
    : `1 thread (${device.isolated ? 'one processor core' : 'not cross-origin isolated'})`;
  const simdText = device.simd ? 'WebAssembly SIMD on' : 'no WebAssembly SIMD';
  elements.about.textContent = `About this device: ${threadText}, ${simdText}, `
    + `${device.hardwareConcurrency} logical processors.`;
  elements.about.dataset.threads = String(device.threads);
  elements.about.dataset.isolated = String(device.isolated);
}

/** The panel's buttons: "Try again" asks the engine to load the model again, "Clear cached model" removes it. */
export function bindModelActions({ load, clearStoredModel }) {
  elements.retry.addEventListener('click', () => {
    elements.retry.hidden = true;
    setModelStatus('Trying again…');
    load();
  });
  elements.clear.addEventListener('click', async () => {
    const { removed, error } = await clearStoredModel();
    if (error) setModelStatus(`The stored model could not be removed: ${error}`, true);
    else {
      setModelStatus(removed
        ? 'Removed the stored model. It will download again the next time the app starts.'
        : 'No stored model to remove.');
    }
  });
}
