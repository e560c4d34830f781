// Memory over a long session: one page and one engine worker classify knee X-rays 500 times. After a
// warm-up the image core's WebAssembly heap must not grow at all, and the JavaScript heaps (after a forced
// garbage collection) and the renderer process, which also holds ONNX Runtime's heap, only within stated bounds.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BATCH_OF_TEN, closeAppSession, engineStats, exposeEngineWorker, openAppSession, openHeapProbe, rendererMemory, requirePrerequisites, shownKnees, SUITE_MS, waitForResults,
} from './harness.mjs';

// The one-knee OAI crops (224 and 299 px): small images keep 500 classifications within minutes.
const KNEES = BATCH_OF_TEN.filter((file) => /^\d+[LR_]/.test(path.basename(file)));
const CLASSIFICATIONS = 500;
const WARM_UP = 20;
const CHECKPOINT_EVERY = 120;
const MIB = 1024 * 1024;
// The core's heap only grows, in steps of at least a fifth of its size: once it fits these images, any growth
// is memory it did not give back. After the warm-up the JavaScript heaps stay within a few hundred kB; 4 MiB
// more would be a leak of over 8 kB per classification. The renderer's resident memory (ONNX Runtime's heap
// included) moves with allocator caches by up to ~20 MiB; 64 MiB more would be over 130 kB per
// classification, e.g. any leaked input tensor (600 kB) or heatmap.
const BOUNDS = { jsHeapGrowthMiB: 4, rendererGrowthMiB: 64 };

describe('memory over 500 classifications in one page', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;

  before(async () => {
    requirePrerequisites();
    assert.equal(KNEES.length, 5, 'five one-knee crops among the batch of ten');
    ({ server, browser, page } = await openAppSession({ beforeOpen: exposeEngineWorker }));
  });

  after(async () => {
    await closeAppSession({ server, browser });
  });

  async function classifyBatch() {
    await page.setInputFiles('#file-input', KNEES);
    const status = await waitForResults(page, KNEES.length);
    assert.match(status, new RegExp(`^Checked ${KNEES.length} files: ${KNEES.length} classified\\.`));
    return (await shownKnees(page))[0].pOa;
  }

  it('keeps the core heap fixed and the JavaScript heaps and renderer bounded', { timeout: SUITE_MS }, async (t) => {
    const heapProbe = await openHeapProbe(page, '/worker.js');
    const engineWorker = page.workers().find((worker) => worker.url().endsWith('/worker.js'));
    let workerClosed = false;
    engineWorker.on('close', () => { workerClosed = true; });

    const measure = async (classified) => {
      const [stats, heaps, [renderer]] = await Promise.all([engineStats(page), heapProbe.measure(), rendererMemory()]);
      const sample = {
        classified,
        filesChecked: stats.filesChecked,
        coreHeapMiB: stats.coreHeapBytes / MIB,
        pageHeapMiB: heaps.pageBytes / MIB,
        workerHeapMiB: heaps.workerBytes / MIB,
        rendererMiB: renderer.residentMiB,
      };
      t.diagnostic(JSON.stringify(sample, (key, value) => (typeof value === 'number' ? Number(value.toFixed(2)) : value)));
      return sample;
    };

    const started = Date.now();
    const firstPOa = await classifyBatch();
    let classified = KNEES.length;
    while (classified < WARM_UP) {
      await classifyBatch();
      classified += KNEES.length;
    }
    const warm = await measure(classified);
    let lastPOa;
    while (classified < CLASSIFICATIONS) {
      lastPOa = await classifyBatch();
      classified += KNEES.length;
      if ((classified - WARM_UP) % CHECKPOINT_EVERY === 0 && classified < CLASSIFICATIONS) await measure(classified);
    }
    const end = await measure(classified);
    t.diagnostic(`${classified} classifications in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    await heapProbe.close();

    assert.equal(workerClosed, false, 'the engine worker must stay alive');
    assert.equal(end.filesChecked, CLASSIFICATIONS, 'one worker checked every file');
    assert.equal(lastPOa, firstPOa, 'the last batch scores its first knee exactly like the first batch');
    assert.equal(end.coreHeapMiB, warm.coreHeapMiB, 'the core heap must not grow after the warm-up');
    for (const heap of ['pageHeapMiB', 'workerHeapMiB']) {
      assert.ok(end[heap] - warm[heap] < BOUNDS.jsHeapGrowthMiB,
        `${heap} grew by ${(end[heap] - warm[heap]).toFixed(2)} MiB (bound ${BOUNDS.jsHeapGrowthMiB} MiB)`);
    }
    assert.ok(end.rendererMiB - warm.rendererMiB < BOUNDS.rendererGrowthMiB,
      `the renderer grew by ${(end.rendererMiB - warm.rendererMiB).toFixed(0)} MiB (bound ${BOUNDS.rendererGrowthMiB} MiB)`);
    assert.deepEqual(browser.problems, []);
  });
});
