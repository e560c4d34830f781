// The web app in a real browser: classification matching the CLI, threads, batches and CSV,
// bad input, phone width, keyboard use, offline use, and that nothing leaves the device.
// One browser profile runs the tests in order, like one person using the app.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  BATCH_OF_TEN, SAMPLES, SLOW_MS, SUITE_MS, dicomFixtureCases, launchBrowser, openApp, parseCsvLine,
  requirePrerequisites, runCli, screenshot, serveApp, shownKnees, waitForResults, writeSyntheticDicom,
} from './harness.mjs';

const TOLERANCE = 1e-4;

describe('web app', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;
  let serverClosed = false;

  before(async () => {
    requirePrerequisites();
    server = await serveApp();
    browser = await launchBrowser();
    page = browser.page;
    await openApp(page, server.url);
  });

  after(async () => {
    await browser?.close();
    if (!serverClosed) await server?.close();
  });

  async function classifyInPage(files) {
    await page.setInputFiles('#file-input', files);
    return waitForResults(page, files.length);
  }

  it('gives a real X-ray the same P(OA) as the CLI', { timeout: SLOW_MS }, async () => {
    const status = await classifyInPage([SAMPLES.single]);
    assert.match(status, /chance of osteoarthritis/);
    const [knee] = await shownKnees(page);
    const cli = await runCli([SAMPLES.single]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(knee.side, 'single');
    assert.ok(Math.abs(knee.pOa - cli.results[0].p_oa) <= TOLERANCE,
      `page P(OA) ${knee.pOa} differs from CLI ${cli.results[0].p_oa}`);
    assert.equal(await page.locator('#detail .crop-canvas').count(), 1, 'the crop the model saw is shown');
    assert.equal(await page.locator('#detail .cam-overlay').count(), 1, 'the heatmap is shown');
    await screenshot(page, 'result-single.png');
  });

  it('shows the heatmap with an opacity slider and an on/off switch', async () => {
    const overlay = page.locator('#detail .cam-overlay');
    await page.locator('#detail .cam-opacity').fill('80');
    assert.equal(await overlay.evaluate((canvas) => canvas.style.opacity), '0.8');
    await page.locator('#detail .cam-toggle').uncheck();
    assert.equal(await overlay.isVisible(), false);
    await page.locator('#detail .cam-toggle').check();
    assert.equal(await overlay.isVisible(), true);
  });

  it('gives each knee of a bilateral X-ray its own result, matching the CLI', { timeout: SLOW_MS }, async () => {
    await classifyInPage([SAMPLES.bilateral]);
    const knees = await shownKnees(page);
    const cli = await runCli([SAMPLES.bilateral]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.deepEqual(knees.map((knee) => knee.side), ['left', 'right']);
    assert.deepEqual(cli.results[0].knees.map((knee) => knee.side), ['left', 'right']);
    knees.forEach((knee, i) => assert.ok(Math.abs(knee.pOa - cli.results[0].knees[i].p_oa) <= TOLERANCE));
    await screenshot(page, 'result-bilateral.png');
  });

  it('reads a 16-bit X-ray like the CLI does', { timeout: SLOW_MS }, async () => {
    await classifyInPage([SAMPLES.sixteenBit]);
    const [knee] = await shownKnees(page);
    const cli = await runCli([SAMPLES.sixteenBit]);
    assert.ok(Math.abs(knee.pOa - cli.results[0].p_oa) <= TOLERANCE);
  });

  it('reads a DICOM file like the CLI does', { timeout: SLOW_MS }, async () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'oac-e2e-dicom-'));
    try {
      const dicom = path.join(scratch, 'synthetic.dcm');
      writeSyntheticDicom(dicom);
      await classifyInPage([dicom]);
      const [knee] = await shownKnees(page);
      const cli = await runCli([dicom]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.ok(Math.abs(knee.pOa - cli.results[0].p_oa) <= TOLERANCE, `page ${knee.pOa} vs CLI ${cli.results[0].p_oa}`);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });

  it('classifies a viewer-exported DICOM like its source PNG, in the page and the CLI', { timeout: SLOW_MS }, async () => {
    // Lossless DCMTK exports of dataset PNGs: an 8-bit OAI crop (img2dcm, RLE) and a 16-bit radiograph
    // of both knees (deflated explicit VR little endian).
    const cases = dicomFixtureCases();
    const exports = [cases['oai-grey8-export-rle'], cases['bilateral16-deflated']];
    const cli = await runCli(exports.map((entry) => entry.file));
    assert.equal(cli.code, 0, cli.stderr);
    for (const [i, entry] of exports.entries()) {
      await classifyInPage([entry.source_png]);
      const fromPng = await shownKnees(page);
      await classifyInPage([entry.file]);
      const fromDicom = await shownKnees(page);
      assert.deepEqual(fromDicom.map((knee) => knee.side), fromPng.map((knee) => knee.side), entry.name);
      fromDicom.forEach((knee, k) => {
        assert.ok(Math.abs(knee.pOa - fromPng[k].pOa) <= TOLERANCE, `${entry.name}: DICOM ${knee.pOa} vs PNG ${fromPng[k].pOa}`);
        assert.ok(Math.abs(knee.pOa - cli.results[i].knees[k].p_oa) <= TOLERANCE, `${entry.name}: page vs CLI`);
      });
    }
  });

  it('runs ONNX Runtime on several threads when cross-origin isolated', async () => {
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true);
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const about = page.locator('#about-device');
    assert.equal(await about.getAttribute('data-isolated'), 'true');
    assert.equal(Number(await about.getAttribute('data-threads')), Math.min(4, cores));
    if (cores > 1) {
      // ORT's thread pool lives in Emscripten pthread workers started from its own .mjs.
      const pthreads = page.workers().filter((worker) => worker.url().endsWith('/ort/ort-wasm-simd-threaded.mjs'));
      assert.ok(pthreads.length >= 1, `expected ORT worker threads, saw ${page.workers().map((w) => w.url())}`);
    }
  });

  it('classifies a batch of ten into a sortable table and exports it as CSV', { timeout: SLOW_MS }, async () => {
    const status = await classifyInPage(BATCH_OF_TEN);
    assert.match(status, /Checked 10 files: 10 classified/);
    const rows = page.locator('#results-table tbody tr');
    assert.equal(await rows.count(), 10);
    await screenshot(page, 'batch.png');

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
    assert.equal(download.suggestedFilename(), 'knee-oa-results.csv');
    const csv = (await readFile(await download.path(), 'utf8')).trim().split(/\r?\n/);
    assert.equal(csv.length, 11);
    assert.match(csv[0], /^file,knee,p_oa,oa,kl_grade,kl_set,kl0,kl1,kl2,kl3,kl4,in_distribution,ood_score,status,box,box_set_by_hand$/);

    const cli = await runCli(BATCH_OF_TEN);
    assert.equal(cli.code, 0, cli.stderr);
    const cliByName = new Map(cli.results.map((result) => [path.basename(result.file), result]));
    for (const line of csv.slice(1)) {
      const fields = parseCsvLine(line);
      const [name, , pOa] = fields;
      const expected = cliByName.get(name);
      assert.ok(Math.abs(Number(pOa) - expected.p_oa) <= TOLERANCE, `${name}: CSV ${pOa} vs CLI ${expected.p_oa}`);
      assert.equal(fields[5], expected.kl_set.join(' '), `${name}: the KL set`);
      assert.equal(fields.at(-2), expected.box.join(' '), `${name}: the knee's box`);
      assert.equal(fields.at(-1), 'false', `${name}: found, not set by hand`);
    }

    // Sorting by P(OA): ascending, then descending.
    const shownProbabilities = async () => (await page.$$eval('#results-table tbody tr td:nth-child(3)',
      (cells) => cells.map((cell) => Number.parseFloat(cell.textContent))));
    await page.click('#results-table button[data-sort="p_oa"]');
    const ascending = await shownProbabilities();
    assert.deepEqual(ascending, [...ascending].sort((a, b) => a - b));
    await page.click('#results-table button[data-sort="p_oa"]');
    const descending = await shownProbabilities();
    assert.deepEqual(descending, [...descending].sort((a, b) => b - a));
    assert.equal(await page.getAttribute('#results-table th:nth-child(3)', 'aria-sort'), 'descending');
  });

  it('explains a dropped file that is not an X-ray, then takes the next pasted one', { timeout: SLOW_MS }, async () => {
    await page.evaluate(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(['these are notes, not an image'], 'notes.png', { type: 'image/png' }));
      document.querySelector('#drop-zone').dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    });
    await waitForResults(page, 1);
    assert.match(await page.textContent('#status'), /Could not check notes\.png: The file is not a PNG, JPEG/);
    assert.match(await page.textContent('#detail .file-error'), /could not be checked/);

    const bytes = [...await readFile(SAMPLES.single)];
    await page.evaluate((data) => {
      const transfer = new DataTransfer();
      transfer.items.add(new File([new Uint8Array(data)], 'pasted.png', { type: 'image/png' }));
      document.dispatchEvent(new ClipboardEvent('paste', { clipboardData: transfer, bubbles: true, cancelable: true }));
    }, bytes);
    await waitForResults(page, 1);
    assert.match(await page.textContent('#status'), /^pasted\.png .*chance of osteoarthritis/);
    assert.equal((await shownKnees(page)).length, 1);
  });

  it('can be used with the keyboard alone', async () => {
    // Tab from the top of the page reaches the file button...
    await page.evaluate(() => document.activeElement?.blur());
    const focusOrder = [];
    for (let step = 0; step < 12 && focusOrder.at(-1) !== 'choose-files'; step += 1) {
      await page.keyboard.press('Tab');
      focusOrder.push(await page.evaluate(() => document.activeElement?.id || document.activeElement?.tagName));
    }
    assert.equal(focusOrder.at(-1), 'choose-files', `focus went ${focusOrder.join(' → ')}`);
    // ...and Enter opens the file picker (caught here before a native dialog would appear).
    await page.evaluate(() => {
      window.filePickerOpened = false;
      document.querySelector('#file-input').addEventListener('click', (event) => {
        event.preventDefault();
        window.filePickerOpened = true;
      }, { once: true });
    });
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => window.filePickerOpened), true);
    assert.equal(await page.getAttribute('#status', 'aria-live'), 'polite');
  });

  it('fits a phone screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await classifyInPage([SAMPLES.bilateral]);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than the phone screen`);
    await screenshot(page, 'phone.png');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('works offline once it has been opened', { timeout: SLOW_MS }, async () => {
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      }
    });
    await browser.context.setOffline(true);
    await server.close();
    serverClosed = true;
    await openApp(page, server.url);
    assert.match(await page.textContent('#model-status'), /loaded from this device/);
    assert.equal(await page.evaluate(() => self.crossOriginIsolated), true, 'the service worker keeps the page isolated');
    await classifyInPage([SAMPLES.single]);
    assert.equal((await shownKnees(page)).length, 1);
  });

  it('sent nothing off-origin and no image bytes anywhere', () => {
    assert.ok(browser.requests.length > 0);
    for (const request of browser.requests) {
      const url = new URL(request.url);
      // blob: URLs (the CSV download) are local; their origin is the app's.
      assert.equal(url.origin, server.origin, `request left the app's origin: ${request.url}`);
      assert.ok(['GET', 'HEAD'].includes(request.method), `${request.method} ${request.url}`);
      assert.ok(!request.postData?.length, `request with a body: ${request.url}`);
    }
    for (const request of server.requests) {
      assert.ok(['GET', 'HEAD'].includes(request.method), `${request.method} ${request.path}`);
      assert.equal(request.bodyBytes, 0, `request with a body: ${request.path}`);
    }
    assert.deepEqual(browser.problems.filter((problem) => problem.startsWith('page error')), []);
  });
});
