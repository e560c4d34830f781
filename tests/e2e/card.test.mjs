// The page follows the model card: an image whose OOD score is above the card's threshold gets
// "This does not look like a knee X-ray" instead of a number, and the verdict uses the card's
// threshold and explains its target. Each case serves a copy of the app with an edited card.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  BATCH_OF_TEN, SAMPLES, SLOW_MS, SUITE_MS, copyOfApp, launchBrowser, openApp, requirePrerequisites, serveApp, shownKnees,
  waitForResults,
} from './harness.mjs';

const withCard = (edit) => ({
  'model/card.json': (bytes) => {
    const card = JSON.parse(bytes.toString('utf8'));
    edit(card);
    return `${JSON.stringify(card, null, 2)}\n`;
  },
});

describe('model card', { timeout: SUITE_MS }, () => {
  let browser;
  const cleanups = [];

  before(async () => {
    requirePrerequisites();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    for (const cleanup of cleanups) await cleanup();
  });

  async function openWithCard(edit) {
    const app = copyOfApp(withCard(edit));
    const server = await serveApp({ root: app.root });
    cleanups.push(() => server.close(), () => app.remove());
    await openApp(browser.page, server.url);
  }

  it('refuses to score an image that does not look like a knee X-ray', { timeout: SLOW_MS }, async () => {
    // Every OOD score is above a negative threshold, so every knee counts as out of distribution.
    await openWithCard((card) => { card.ood.threshold = -1; });
    const { page } = browser;
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    assert.match(await waitForResults(page, 1), /this does not look like a knee X-ray/);
    const [knee] = await shownKnees(page);
    assert.equal(knee.inDistribution, false);
    assert.equal(await page.isVisible('#detail .ood-message'), true);
    assert.equal(await page.isVisible('#detail .probability'), false, 'no number is shown');
    assert.equal(await page.isVisible('#detail .kl'), false);

    await page.setInputFiles('#file-input', BATCH_OF_TEN.slice(0, 3));
    await waitForResults(page, 3);
    const cells = await page.$$eval('#results-table tbody tr', (rows) => rows.map((row) => [
      row.cells[2].textContent, row.cells[4].textContent]));
    assert.deepEqual(cells, Array(3).fill(['—', 'Not a knee X-ray']));
  });

  it('states the verdict at the card\'s threshold', { timeout: SLOW_MS }, async () => {
    const { page } = browser;
    await openWithCard((card) => { card.threshold = 0; });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    assert.match(await page.textContent('#detail .verdict'), /^Osteoarthritis likely: at or above the model's decision threshold of 0%/);

    await openWithCard((card) => { card.threshold = 1; });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    assert.match(await page.textContent('#detail .verdict'), /^Osteoarthritis unlikely: below the model's decision threshold of 100%/);
  });

  it('explains what the threshold promises, from the card\'s threshold_target', { timeout: SLOW_MS }, async () => {
    const { page } = browser;
    await openWithCard((card) => { card.threshold = 0.25; card.threshold_target = { sensitivity: 0.8, confidence: 0.95 }; });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    assert.match(await page.textContent('#detail .explain-certainty'),
      /That level, 25%, is set low on purpose: .* at least 8 in 10 knees with osteoarthritis reach it/);

    await openWithCard((card) => { delete card.threshold_target; });
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    assert.doesNotMatch(await page.textContent('#detail .explain-certainty'), /That level/);
  });
});
