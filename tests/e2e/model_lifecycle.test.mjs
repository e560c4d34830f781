// The model's life on a device: a corrupted download is refused, the cached copy can be cleared,
// and a new deployment is offered as an update.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  DIST, SAMPLES, SLOW_MS, SUITE_MS, copyOfApp, launchBrowser, openApp, requirePrerequisites, serveApp, waitForResults,
} from './harness.mjs';

const card = () => JSON.parse(readFileSync(path.join(DIST, 'model', 'card.json'), 'utf8'));

describe('model lifecycle', { timeout: SUITE_MS }, () => {
  before(requirePrerequisites);

  it('refuses a corrupted model with a clear message and stays usable', { timeout: SLOW_MS }, async () => {
    const modelFile = path.join('model', card().model_file);
    const app = copyOfApp({
      [modelFile]: (bytes) => {
        const corrupted = Buffer.from(bytes);
        corrupted[Math.floor(corrupted.length / 2)] ^= 0xff;
        return corrupted;
      },
    });
    const server = await serveApp({ root: app.root });
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await page.goto(server.url);
      await page.waitForSelector('body[data-model-ready="false"]', { timeout: SLOW_MS });
      assert.match(await page.textContent('#model-status'), /corrupted: its checksum does not match.*It was not used/);
      assert.equal(await page.isVisible('#retry-model'), true);
      const cachedModels = await page.evaluate(async () => (await (await caches.open('oac-model')).keys()).length);
      assert.equal(cachedModels, 0, 'a corrupted model must not be stored');

      await page.setInputFiles('#file-input', [SAMPLES.single]);
      await waitForResults(page, 1);
      assert.match(await page.textContent('#status'), /Could not check 9000622L\.png: The model is not available/);
    } finally {
      await browser.close();
      await server.close();
      app.remove();
    }
  });

  it('checks the model on this device before it scores, and scores nothing when the check fails', { timeout: SLOW_MS }, async () => {
    const server = await serveApp();
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await openApp(page, server.url);
      assert.equal(await page.getAttribute('body', 'data-self-test'), 'passed');
      assert.match(await page.textContent('#model-status'), /computed the model's known test case correctly/);
    } finally {
      await browser.close();
      await server.close();
    }

    // The card expects an OA logit the model does not give: as if this device computed the model otherwise.
    const shipped = card();
    assert.equal(shipped.self_test?.model_sha256, shipped.sha256, 'the shipped card carries a self-test for its model');
    const tampered = copyOfApp({
      [path.join('model', 'card.json')]: (bytes) => {
        const changed = JSON.parse(bytes.toString('utf8'));
        changed.self_test.expected.oa_logit += 0.5;
        return `${JSON.stringify(changed)}\n`;
      },
    });
    const tamperedServer = await serveApp({ root: tampered.root });
    const tamperedBrowser = await launchBrowser();
    try {
      const { page } = tamperedBrowser;
      await page.goto(tamperedServer.url);
      await page.waitForSelector('body[data-model-ready="false"]', { timeout: SLOW_MS });
      assert.match(await page.textContent('#model-status'),
        /^This device cannot run the model correctly: its known-answer self-test gave oa_logit = .* on onnxruntime-web .*no knee is scored here\.$/);
      await page.setInputFiles('#file-input', [SAMPLES.single]);
      await waitForResults(page, 1);
      assert.match(await page.textContent('#status'), /Could not check 9000622L\.png: The model is not available/);
    } finally {
      await tamperedBrowser.close();
      await tamperedServer.close();
      tampered.remove();
    }
  });

  it('clears the cached model on request and downloads it again next time', { timeout: SLOW_MS }, async () => {
    const server = await serveApp();
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await openApp(page, server.url);
      const cachedModels = () => page.evaluate(async () => (await caches.has('oac-model')
        ? (await (await caches.open('oac-model')).keys()).length : 0));
      assert.equal(await cachedModels(), 1);
      await page.click('#clear-model');
      await page.waitForFunction(() => /Removed the stored model/.test(document.querySelector('#model-status').textContent));
      assert.equal(await cachedModels(), 0);
      await openApp(page, server.url);
      assert.match(await page.textContent('#model-status'), /downloaded, verified and stored/);
    } finally {
      await browser.close();
      await server.close();
    }
  });

  it('replaces a damaged stored model with a fresh download', { timeout: SLOW_MS }, async () => {
    const server = await serveApp();
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await openApp(page, server.url);
      await page.evaluate(async () => {
        const cache = await caches.open('oac-model');
        const [key] = await cache.keys();
        const bytes = new Uint8Array(await (await cache.match(key)).arrayBuffer());
        bytes[bytes.length >> 1] ^= 0xff;
        await cache.put(key, new Response(bytes));
      });
      await openApp(page, server.url);
      assert.match(await page.textContent('#model-status'), /downloaded, verified and stored/);
      await page.setInputFiles('#file-input', [SAMPLES.single]);
      assert.match(await waitForResults(page, 1), /chance of osteoarthritis/);
    } finally {
      await browser.close();
      await server.close();
    }
  });

  it('offers a new deployment as an update and switches to it on request', { timeout: SLOW_MS }, async () => {
    const app = copyOfApp();
    const server = await serveApp({ root: app.root });
    const browser = await launchBrowser();
    try {
      const { page } = browser;
      await openApp(page, server.url);
      const oldVersion = await page.textContent('#build-version');
      await page.evaluate(async () => {
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
          await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
        }
      });
      assert.equal(await page.isVisible('#update-banner'), false);

      // "Deploy" a new build: a new version in the service worker and the page.
      const newVersion = 'e2e-update-1';
      const bump = (bytes) => bytes.toString('utf8').replaceAll(oldVersion, newVersion);
      app.rewrite('sw.js', bump);
      app.rewrite('index.html', bump);
      await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).update());
      await page.waitForSelector('#update-banner:not([hidden])', { timeout: SLOW_MS });

      await Promise.all([page.waitForEvent('load', { timeout: SLOW_MS }), page.click('#update-reload')]);
      await page.waitForSelector('body[data-model-ready="true"]', { timeout: SLOW_MS });
      assert.equal(await page.textContent('#build-version'), newVersion);
      const shellCaches = await page.evaluate(async () => (await caches.keys()).filter((name) => name.startsWith('oac-shell-')));
      assert.deepEqual(shellCaches, [`oac-shell-${newVersion}`], 'the old version\'s cache is gone');
    } finally {
      await browser.close();
      await server.close();
      app.remove();
    }
  });
});
