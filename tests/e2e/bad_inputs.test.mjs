// The malformed and hostile files of tests/support/bad_inputs.py dropped into the page, each together with a real
// knee X-ray: the page must refuse the bad file with the core's own clear message (or, for a compressed DICOM frame
// that the page's codecs decode, the page's: page_error), neither the page nor its
// engine worker may fail, and the knee after it must score exactly as it did before any bad file.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  closeAppSession, openAppSession, PYTHON, REPO_ROOT, requirePrerequisites, SAMPLES, shownKnees, SLOW_MS, SUITE_MS, waitForResults,
} from './harness.mjs';

// The corpus is written before the tests are defined: there is one test per file.
const corpus = mkdtempSync(path.join(tmpdir(), 'oac-e2e-bad-inputs-'));
const generator = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests', 'support', 'bad_inputs.py'), '--out', corpus], { encoding: 'utf8' });
if (generator.status !== 0) throw new Error(`tests/support/bad_inputs.py failed: ${generator.stderr}`);
const { cases } = JSON.parse(readFileSync(path.join(corpus, 'expected.json'), 'utf8'));

describe('bad inputs in the page', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;
  let baselinePOa;
  let workerClosed = false;

  before(async () => {
    requirePrerequisites();
    ({ server, browser, page } = await openAppSession());
    page.workers().find((worker) => worker.url().endsWith('/worker.js')).on('close', () => { workerClosed = true; });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    [{ pOa: baselinePOa }] = await shownKnees(page);
  });

  after(async () => {
    await closeAppSession({ server, browser });
    rmSync(corpus, { recursive: true, force: true });
  });

  it('has a corpus of at least 30 bad files', () => {
    assert.ok(cases.filter((badInput) => badInput.error).length >= 30, `${cases.length} cases`);
  });

  for (const badInput of cases) {
    it(`${badInput.file}: ${badInput.what}`, { timeout: SLOW_MS }, async () => {
      await page.setInputFiles('#file-input', [path.join(corpus, badInput.file), SAMPLES.single]);
      const status = await waitForResults(page, 2);
      const [badRow, kneeRow] = await page.$$eval('#results-table tbody tr',
        (rows) => rows.map((row) => row.lastElementChild.textContent));
      const expectedError = badInput.page_error ?? badInput.error;
      if (expectedError) {
        // The table shows the core's message as it is; the detail view (the first file's) words it for people.
        assert.equal(badRow, `Error: ${expectedError}`);
        assert.match(status, /^Checked 2 files: 1 classified, 1 could not be read\./);
        const refusal = await page.textContent('#detail .file-error');
        assert.ok(refusal.includes(expectedError), `the page says "${refusal}"`);
      } else {
        // Odd but valid (a CMYK JPEG): read, not refused as unreadable.
        assert.doesNotMatch(badRow, /^Error/);
      }
      assert.match(kneeRow, /^OA (un)?likely$/);

      await page.click('#results-table tbody tr:nth-child(2) button');
      const [knee] = await shownKnees(page);
      assert.equal(knee.pOa, baselinePOa, 'the knee after the bad file scores exactly as before');
      assert.equal(workerClosed, false, 'the engine worker must stay alive');
      assert.deepEqual(browser.problems, []);
    });
  }
});
