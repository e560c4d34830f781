// On a static host that sends no headers at all, the service worker adds COOP/COEP and the CSP:
// after one automatic reload the page is cross-origin isolated and runs threaded.

import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { SAMPLES, SLOW_MS, SUITE_MS, launchBrowser, requirePrerequisites, serveApp, shownKnees, waitForResults } from './harness.mjs';

describe('plain static host', { timeout: SUITE_MS }, () => {
  let server;
  let browser;

  before(async () => {
    requirePrerequisites();
    server = await serveApp({ plainHost: true });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  it('becomes cross-origin isolated through its service worker', { timeout: SLOW_MS }, async () => {
    const { page } = browser;
    const documentHeaders = (await page.goto(server.url)).headers();
    assert.equal(documentHeaders['cross-origin-embedder-policy'], undefined, 'the host itself sends no COEP');

    // The page reloads itself once the service worker controls it; poll across that navigation.
    const deadline = Date.now() + SLOW_MS;
    let state = {};
    while (Date.now() < deadline) {
      state = await page.evaluate(() => ({
        isolated: self.crossOriginIsolated,
        ready: document.body.dataset.modelReady,
        threads: document.querySelector('#about-device').dataset.threads,
        cores: navigator.hardwareConcurrency,
      })).catch(() => ({}));
      if (state.isolated && state.ready) break;
      await sleep(250);
    }
    assert.equal(state.isolated, true);
    assert.equal(state.ready, 'true');
    assert.equal(Number(state.threads), Math.min(4, state.cores));

    await page.setInputFiles('#file-input', [SAMPLES.single]);
    assert.match(await waitForResults(page, 1), /chance of osteoarthritis/);
    assert.equal((await shownKnees(page)).length, 1);
    assert.deepEqual(browser.problems.filter((problem) => problem.startsWith('page error')), []);
  });
});
