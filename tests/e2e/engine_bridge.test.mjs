// The page and its engine worker: a file over the core's size limit is refused with the core's own sentence before
// it is read (the page asks the worker, fileSizeProblem, about a file over the limit the worker stated when ready,
// and only then); and when the worker stops while a request for a file is in
// flight, that file fails with a clear message, a fresh worker starts, and the next file is classified normally.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  closeAppSession, exposeEngineWorker, openAppSession, requirePrerequisites, SAMPLES, shownKnees, SLOW_MS, SUITE_MS, waitForResults,
} from './harness.mjs';

describe('the engine worker bridge', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    requirePrerequisites();
    ({ server, browser, page } = await openAppSession({ beforeOpen: exposeEngineWorker }));
  });

  after(async () => {
    await closeAppSession({ server, browser });
  });

  it('refuses a file over the core\'s size limit with the core\'s own sentence', { timeout: SLOW_MS }, async () => {
    await page.evaluate(() => {
      const big = new File([new ArrayBuffer(150_000_000)], 'big.png', { type: 'image/png' });
      const transfer = new DataTransfer();
      transfer.items.add(big);
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    const status = await waitForResults(page, 1);
    assert.equal(status, 'Could not check big.png: The file is too large (150.0 MB; the limit is 100.0 MB).');
    assert.match(await page.textContent('#detail .file-error'), /The file is too large \(150\.0 MB; the limit is 100\.0 MB\)\./);
    // One byte over the limit is refused too (the page no longer has a limit of its own).
    await page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new ArrayBuffer(100_000_001)], 'just-over.png'));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    assert.match(await waitForResults(page, 1), /^Could not check just-over\.png: The file is too large \(100\.0 MB; the limit is 100\.0 MB\)\.$/);
  });

  it('asks the worker about a file\'s size only when it is over the limit the worker stated', { timeout: SLOW_MS }, async () => {
    await page.evaluate(() => {
      window.oacSizeQuestions = 0;
      const worker = window.oacEngineWorker;
      const post = worker.postMessage.bind(worker);
      worker.postMessage = (message, transfer) => {
        if (message?.type === 'file-size') window.oacSizeQuestions += 1;
        return post(message, transfer);
      };
    });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    assert.match(await waitForResults(page, 1), /chance of osteoarthritis/);
    assert.equal(await page.evaluate(() => window.oacSizeQuestions), 0, 'a file within the limit is read at once');
    await page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([], 'empty.png'));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    assert.match(await waitForResults(page, 1), /^Could not check empty\.png: The file is empty\.$/);
    assert.equal(await page.evaluate(() => window.oacSizeQuestions), 1, 'the core words the refusal');
  });

  it('fails the file in flight when the worker stops, starts a fresh one, and classifies the next file', { timeout: SLOW_MS }, async () => {
    const firstWorker = await page.evaluateHandle(() => window.oacEngineWorker);
    // The worker crashes (an uncaught error, as a crash in the core or ONNX Runtime raises) instead of answering the
    // page's next request, so that request is surely in flight when it stops.
    const engine = page.workers().find((candidate) => new URL(candidate.url()).pathname.endsWith('/worker.js'));
    await engine.evaluate(() => {
      const post = self.postMessage.bind(self);
      self.postMessage = (message, transfer) => {
        if (message?.type !== 'reply') return post(message, transfer);
        setTimeout(() => { throw new Error('simulated engine crash'); });
        return undefined;
      };
    });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    const status = await waitForResults(page, 1);
    assert.match(status, /^Could not check 9000622L\.png: The engine stopped unexpectedly while working on this and was started again; try again\.$/);
    assert.equal(await page.evaluate((old) => window.oacEngineWorker !== old, firstWorker), true, 'a fresh worker');

    await page.setInputFiles('#file-input', [SAMPLES.single]);
    assert.match(await waitForResults(page, 1), /chance of osteoarthritis/);
    const [knee] = await shownKnees(page);
    assert.ok(knee.pOa >= 0 && knee.pOa <= 1);
    assert.equal(await page.getAttribute('body', 'data-model-ready'), 'true');
  });

  it('had no page error other than the simulated crash', () => {
    assert.deepEqual(browser.problems.filter((problem) => !/simulated engine crash/.test(problem)), []);
  });
});
