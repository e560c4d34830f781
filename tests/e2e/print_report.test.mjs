// The KL prediction set, the plain-language explanation and the printed report of one file: a whole bilateral
// radiograph is classified, each knee shows its likely KL grades (marked on the bars) and an explanation a patient
// can open, and "Print / save as PDF" prints one A4 page holding the image with its boxes, both knees' results, the
// model's name, version and sha256 and the not-a-medical-device notice, and none of the app's controls.
// pdfinfo/pdftotext/pdftoppm: Debian's poppler-utils. The page as a PNG: build/test-output/print-report.png.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  closeAppSession, openAppSession, requirePrerequisites, SLOW_MS, SUITE_MS, TEST_OUTPUT, waitForResults, WHOLE_RADIOGRAPH,
} from './harness.mjs';

function run(command, args) {
  const done = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(done.status, 0, `${command} ${args.join(' ')}: ${done.error?.message ?? done.stderr}`);
  return done.stdout;
}

/** "KL 2", "KL 1–2", "KL 0, 2", as the page writes a set. */
function setText(grades) {
  if (grades.length === 1) return `KL ${grades[0]}`;
  const contiguous = grades.every((grade, i) => i === 0 || grade === grades[i - 1] + 1);
  return contiguous ? `KL ${grades[0]}–${grades.at(-1)}` : `KL ${grades.join(', ')}`;
}

describe('KL set, plain language and the printed report', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;
  let scratch;
  let shown;

  before(async () => {
    requirePrerequisites();
    if (!existsSync(WHOLE_RADIOGRAPH)) throw new Error(`${WHOLE_RADIOGRAPH} is missing (set OAC_DATASETS)`);
    scratch = mkdtempSync(path.join(tmpdir(), 'oac-e2e-print-'));
    ({ server, browser, page } = await openAppSession());
  });

  after(async () => {
    await closeAppSession({ server, browser });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('shows each knee\'s likely KL grades with their coverage and marks their bars', { timeout: SLOW_MS }, async () => {
    await page.setInputFiles('#file-input', [WHOLE_RADIOGRAPH]);
    await waitForResults(page, 1);
    shown = await page.$$eval('#detail .knee', (knees) => knees.map((knee) => ({
      pOa: knee.querySelector('.probability-value').textContent,
      klSet: knee.dataset.klSet.split(',').map(Number),
      setLine: knee.querySelector('.kl-set').textContent,
      marked: [...knee.querySelectorAll('.kl-bars li')].flatMap((item, grade) => (item.classList.contains('in-set') ? [grade] : [])),
    })));
    assert.equal(shown.length, 2);
    for (const knee of shown) {
      assert.ok(knee.klSet.length >= 1 && knee.klSet.every((grade) => grade >= 0 && grade <= 4), `${knee.klSet}`);
      assert.equal(knee.setLine, `Likely grades: ${setText(knee.klSet)} (90% coverage)`);
      assert.deepEqual(knee.marked, knee.klSet);
    }
  });

  it('explains each knee\'s result in plain words, closed until opened', async () => {
    const details = page.locator('#detail .knee .explain');
    assert.equal(await details.count(), 2);
    const first = details.first();
    assert.equal(await first.evaluate((element) => element.open), false);
    await first.locator('summary').click();
    assert.equal(await first.evaluate((element) => element.open), true);
    const text = await first.textContent();
    assert.match(text, /0 none, 1 doubtful, 2 minimal/);
    assert.match(text, /moderate.*4 severe/s);
    assert.ok(text.includes(shown[0].pOa), `the knee's probability ${shown[0].pOa}`);
    assert.ok(text.includes(setText(shown[0].klSet).replace(/^KL /, '')), 'the knee\'s likely grades');
    assert.match(text, /not a\s+diagnosis/);
    assert.match(text, /clinician must\s+read the X-ray/);
  });

  it('prints one file as a one-page report without the app\'s controls', { timeout: SLOW_MS }, async () => {
    const card = await page.evaluate(() => fetch('model/card.json').then((response) => response.json()));
    const buttonLabels = await page.$$eval('button:not(#results-table button)', (buttons) => buttons.map((button) => button.textContent.trim()));
    assert.ok(buttonLabels.includes('Print / save as PDF'));
    await page.evaluate(() => { window.print = () => { window.oacPrinted = (window.oacPrinted ?? 0) + 1; }; });
    await page.click('#detail .print-report');
    assert.equal(await page.evaluate(() => window.oacPrinted), 1);
    assert.equal(await page.evaluate(() => document.body.classList.contains('printing-report')), true);
    assert.equal(await page.getAttribute('body', 'data-print-file'), path.basename(WHOLE_RADIOGRAPH));

    await page.emulateMedia({ media: 'print' });
    const pdf = path.join(scratch, 'report.pdf');
    await page.pdf({ path: pdf, format: 'A4' });
    await page.emulateMedia({ media: null });
    assert.match(run('pdfinfo', [pdf]), /^Pages:\s+1$/m, 'one page per file');
    const text = run('pdftotext', ['-layout', pdf, '-']);
    const flat = text.replace(/\s+/g, '');
    assert.match(text, /Knee X-ray osteoarthritis report/);
    assert.ok(text.includes(path.basename(WHOLE_RADIOGRAPH)), 'the file name');
    for (const knee of shown) {
      assert.ok(text.includes(knee.pOa), `P(OA) ${knee.pOa} as shown`);
      assert.ok(text.includes(knee.setLine), `${knee.setLine}`);
    }
    assert.match(text, /decision\s+threshold of \d+%/);
    assert.ok(text.includes(`${card.name} ${card.version}`), `model ${card.name} ${card.version}`);
    assert.ok(flat.includes(card.sha256), 'the model\'s sha256');
    assert.match(text, /Not a medical device/);
    assert.match(text, /Kellgren–Lawrence \(KL\) grades/);
    assert.match(text, /Heatmap:/);
    for (const label of buttonLabels) assert.ok(!text.includes(label), `button "${label}" printed`);
    assert.doesNotMatch(text, /Choose knee X-rays|Clear cached model|About this device|Show heatmap|Opacity/);

    mkdirSync(TEST_OUTPUT, { recursive: true });
    run('pdftoppm', ['-png', '-r', '60', '-singlefile', pdf, path.join(TEST_OUTPUT, 'print-report')]);
    assert.ok(existsSync(path.join(TEST_OUTPUT, 'print-report.png')));

    // After printing, the page is the app again.
    await page.evaluate(() => window.dispatchEvent(new Event('afterprint')));
    assert.equal(await page.evaluate(() => document.body.classList.contains('printing-report')), false);
    assert.equal(await page.getAttribute('body', 'data-print-file'), null);
  });

  it('had no page error', () => {
    assert.deepEqual(browser.problems, []);
  });
});
