// A patient's CD in the page and the CLI: tests/support/make_patient_cd.py lays out a folder as hospitals burn it
// (DICOMDIR by dcmmkdir, files IM00000N without extensions in study/series folders, knee X-rays compressed with
// JPEG Lossless, JPEG 2000 and JPEG-LS, a picture that is not a knee X-ray, a structured report, a presentation
// state, a README). Chosen with the folder picker, and dropped as the real folder (DevTools drags its path, as a
// file manager does), the page gives one result per image, each knee scored as the CLI scores the same folder and
// as the CLI scores the uncompressed originals, a reason for the picture that is not a knee X-ray, and one
// sentence about the report and the presentation state; offline, the codecs the service worker kept on first use
// decode the same folder again. Both go by the DICOMDIR. Copies of the CD whose DICOMDIR lists a file that is gone
// (page and CLI) or is cut short (CLI) are walked instead, and one line says so.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  closeAppSession, openApp, openAppSession, PYTHON, REPO_ROOT, requirePrerequisites, runCli, SAMPLES, shownKnees, SLOW_MS,
  SUITE_MS, waitForResults, WHOLE_RADIOGRAPH,
} from './harness.mjs';

const TOLERANCE = 1e-4;

/** Per file shown in the page: { name, series, error, knees: [{ box, pOa }] }, each file's detail opened in turn. */
async function shownFiles(page) {
  const rows = await page.$$eval('#results-table tbody tr', (trs) => trs.map((tr) => ({
    name: tr.querySelector('button').textContent,
    series: tr.querySelector('.series')?.textContent ?? '',
    status: tr.lastElementChild.textContent,
  })));
  const files = [];
  for (const name of [...new Set(rows.map((row) => row.name))]) {
    const row = rows.find((candidate) => candidate.name === name);
    await page.click(`#results-table tbody tr button >> text="${name}"`);
    await page.waitForFunction((file) => document.querySelector('#detail .file-result')?.dataset.file === file, name);
    const knees = (await shownKnees(page)).map(({ box, pOa }) => ({ box, pOa }));
    files.push({ name, series: row.series, error: knees.length ? '' : row.status, knees });
  }
  return files;
}

/**
 * Drops files or folders from this machine on the page's drop zone, as a file manager does: Chromium's DevTools
 * protocol drags the paths themselves, so a folder reaches the page as the real folder's directory entry.
 */
async function dropPaths(page, paths) {
  const cdp = await page.context().newCDPSession(page);
  const zone = await page.locator('#drop-zone').boundingBox();
  const at = { x: zone.x + zone.width / 2, y: zone.y + zone.height / 2 };
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ['dragEnter', 'dragOver', 'drop']) await cdp.send('Input.dispatchDragEvent', { type, ...at, data });
  await cdp.detach();
}

function assertSameKnees(shown, expected, what) {
  assert.equal(shown.length, expected.length, `${what}: knees`);
  shown.forEach((knee, i) => {
    assert.deepEqual(knee.box, expected[i].box, `${what}: box of knee ${i}`);
    assert.ok(Math.abs(knee.pOa - expected[i].p_oa) <= TOLERANCE, `${what}: P(OA) ${knee.pOa} vs ${expected[i].p_oa}`);
  });
}

describe('a patient\'s CD', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;
  let scratch;
  let cd;
  let manifest;
  let cliFolder;
  let cliOriginals;
  let missingCd;
  let cutCd;
  let cliBroken;
  let serverClosed = false;

  before(async () => {
    requirePrerequisites();
    if (!existsSync(WHOLE_RADIOGRAPH)) throw new Error(`the datasets are needed: ${WHOLE_RADIOGRAPH} is missing`);
    scratch = mkdtempSync(path.join(tmpdir(), 'oac-e2e-cd-'));
    const made = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests/support/make_patient_cd.py'), '--out', scratch],
      { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`make_patient_cd.py failed: ${made.stderr}`);
    manifest = JSON.parse(readFileSync(path.join(scratch, 'cd.json'), 'utf8'));
    cd = path.join(scratch, manifest.folder);
    cliFolder = await runCli([cd]);
    // The same CD without one knee image, and with its DICOMDIR cut short: one CLI run for both.
    missingCd = path.join(scratch, 'CD-missing');
    cutCd = path.join(scratch, 'CD-cut');
    cpSync(cd, missingCd, { recursive: true });
    rmSync(path.join(scratch, manifest.knee_images[1].file.replace(/^CD\//, 'CD-missing/')));
    cpSync(cd, cutCd, { recursive: true });
    truncateSync(path.join(cutCd, 'DICOMDIR'), 600);
    cliBroken = await runCli([missingCd, cutCd]);
    cliOriginals = await runCli(manifest.knee_images.map((image) => path.join(scratch, image.uncompressed)));
    ({ server, browser, page } = await openAppSession());
  });

  after(async () => {
    await closeAppSession({ server: serverClosed ? null : server, browser });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('the CLI reads the DICOMDIR: one result per image, lossless files scored as their originals, one line on the rest', () => {
    assert.match(cliFolder.stderr, new RegExp(`${manifest.not_images_sentence}`));
    assert.doesNotMatch(cliFolder.stderr, /DICOMDIR/, 'nothing to say about a DICOMDIR that was read');
    const byFile = new Map(cliFolder.results.map((result) => [path.relative(scratch, result.file), result]));
    assert.deepEqual([...byFile.keys()].sort(), [...manifest.knee_images, ...manifest.not_knee].map((i) => i.file).sort());
    manifest.knee_images.forEach((image, i) => {
      const result = byFile.get(image.file);
      assert.equal(result.ok, true, `${image.file}: ${result.error}`);
      // The DICOMDIR's series records give no description (dcmmkdir writes none).
      assert.match(result.series, /^KNEE BILATERAL, series \d$/);
      assertSameKnees(result.knees.map((knee) => ({ box: knee.box, pOa: knee.p_oa })), cliOriginals.results[i].knees,
        `${image.file} (${image.syntax})`);
    });
    for (const image of manifest.not_knee) assert.equal(byFile.get(image.file).ok, false);
    assert.equal(cliFolder.code, 2, 'a file that is not a knee X-ray fails');
  });

  it('the CLI walks a CD whose DICOMDIR lists a missing file, or is cut short, and says so in one line', () => {
    const missing = manifest.knee_images[1].file.replace(/^CD\//, '');
    const lines = cliBroken.stderr.split('\n');
    const walked = "The folder's files were read one by one instead";
    assert.ok(lines.includes(`classify: ${missingCd}: The DICOMDIR lists a file that is not in the folder: ${missing}. ${walked}`),
      cliBroken.stderr);
    assert.ok(lines.some((line) => line.startsWith(`classify: ${cutCd}: The DICOM file is truncated`) && line.endsWith(walked)),
      cliBroken.stderr);
    const expected = [...manifest.knee_images, ...manifest.not_knee].map((image) => image.file.replace(/^CD\//, ''));
    for (const [folder, files] of [[missingCd, expected.filter((file) => file !== missing)], [cutCd, expected]]) {
      const results = cliBroken.results.filter((result) => result.file.startsWith(`${folder}/`));
      assert.deepEqual(results.map((result) => path.relative(folder, result.file)).sort(), files.sort(), folder);
      for (const result of results.filter((candidate) => candidate.ok)) {
        assert.match(result.series, /^KNEE BILATERAL, series \d: /, 'walked, the series descriptions come from the files');
        const read = cliFolder.results.find((candidate) => path.relative(cd, candidate.file) === path.relative(folder, result.file));
        assertSameKnees(result.knees.map((knee) => ({ box: knee.box, pOa: knee.p_oa })), read.knees, result.file);
      }
    }
  });

  async function checkShown() {
    await waitForResults(page, manifest.knee_images.length + manifest.not_knee.length);
    assert.equal(await page.textContent('#folder-summary'), `${manifest.not_images_sentence}.`);
    const files = await shownFiles(page);
    const expected = [...manifest.knee_images, ...manifest.not_knee].map((image) => image.file.replace(/^CD\//, ''));
    assert.deepEqual(files.map((file) => file.name.replace(/^CD\//, '')).sort(), expected.sort(),
      'one result per image; DICOMDIR, README.TXT, the report and the presentation state are not among them');
    for (const file of files) {
      const relative = `CD/${file.name.replace(/^CD\//, '')}`;
      const cli = cliFolder.results.find((result) => path.relative(scratch, result.file) === relative);
      assert.equal(file.series, cli.series ?? '');
      if (cli.ok) assertSameKnees(file.knees, cli.knees, relative);
      else assert.equal(file.error, `Error: ${cli.error}`, relative);
    }
  }

  it('chosen with the folder picker', { timeout: SLOW_MS }, async () => {
    await page.setInputFiles('#folder-input', cd);
    await checkShown();
    assert.deepEqual(browser.problems, []);
  });

  it('dropped as a folder', { timeout: SLOW_MS }, async () => {
    // A single file first, so that the status and the folder's sentence checked below are the drop's own.
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    assert.equal(await page.isHidden('#folder-summary'), true);
    await dropPaths(page, [cd]);
    await checkShown();
    assert.deepEqual(browser.problems, []);
  });

  it('dropped with a DICOMDIR that lists a missing file: walked, and one sentence says so', { timeout: SLOW_MS }, async () => {
    await page.setInputFiles('#file-input', [SAMPLES.single]);
    await waitForResults(page, 1);
    await dropPaths(page, [missingCd]);
    await waitForResults(page, manifest.knee_images.length - 1 + manifest.not_knee.length);
    const missing = manifest.knee_images[1].file.replace(/^CD\//, '');
    assert.equal(await page.textContent('#folder-summary'), `The DICOMDIR lists a file that is not in the folder: ${missing}. `
      + `The folder's files were read one by one instead. ${manifest.not_images_sentence}.`);
    const rows = await page.$$eval('#results-table tbody tr .series', (cells) => cells.map((cell) => cell.textContent));
    assert.ok(rows.filter(Boolean).every((series) => /^KNEE BILATERAL, series \d: /.test(series)), rows.join(', '));
    assert.deepEqual(browser.problems, []);
  });

  it('opens the same CD offline: the service worker kept the codecs it used', { timeout: SLOW_MS }, async () => {
    await page.evaluate(async () => {
      await navigator.serviceWorker.ready;
      if (!navigator.serviceWorker.controller) {
        await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
      }
    });
    const used = ['codecs/jpeg-lossless.mjs', 'codecs/openjpeg.wasm', 'codecs/charls.wasm'];
    const keptCodecs = () => page.evaluate(async () => {
      const names = (await caches.keys()).filter((name) => name.startsWith('oac-shell-'));
      const urls = (await Promise.all(names.map(async (name) => (await caches.open(name)).keys()))).flat();
      return urls.map((request) => new URL(request.url).pathname.replace(/^.*\/codecs\//, 'codecs/'))
        .filter((file) => file.startsWith('codecs/'));
    });
    // The service worker stores a codec as its response reaches the page, so the last one may still be on its way.
    let kept = await keptCodecs();
    for (const deadline = Date.now() + SLOW_MS / 2; !used.every((file) => kept.includes(file)) && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      kept = await keptCodecs();
    }
    for (const file of used) {
      assert.ok(kept.includes(file), `${file} kept (kept: ${kept.join(', ')})`);
    }
    assert.ok(!kept.includes('codecs/openjph.wasm'), 'a codec no file needed is not fetched');
    await browser.context.setOffline(true);
    await server.close();
    serverClosed = true;
    await openApp(page, server.url);
    await page.setInputFiles('#folder-input', cd);
    await checkShown();
  });
});
