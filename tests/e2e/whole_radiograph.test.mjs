// Whole radiographs in the page: a 2180×2660 JPEG of both knees gets a box per knee joint where the core puts
// it (the CLI reports the same boxes) and a result per knee; a box moved with the keys or the mouse, or resized,
// re-scores that knee alone ("box set by hand") while the other keeps its result, also for a file checked before
// others; a DICOM made from the JPEG with DCMTK gets the same boxes; an image without a knee says so and lets the
// user draw the box, by keys or by mouse, and never scores the whole image as a knee.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  closeAppSession, greyPng, openAppSession, PYTHON, requirePrerequisites, runCli, SAMPLES, screenshot, shownBoxes, shownKnees, SLOW_MS, SUITE_MS, waitForResults, WHOLE_RADIOGRAPH,
} from './harness.mjs';

const TOLERANCE = 1e-4;
const WIDTH = 2180;
const HEIGHT = 2660;
const NO_KNEE = /No knee joint was found in this image/;
const NOT_A_RADIOGRAPH = /This picture is fine grain or noise throughout/;

/** Waits until knee `index` of the detail view shows a box set by hand other than `previousBox`. */
async function waitForHandBox(page, index, previousBox = null) {
  await page.waitForFunction(({ knee, previous }) => {
    const section = document.querySelector(`#detail .knee[data-index="${knee}"]`);
    return section?.dataset.byHand === 'true' && section.dataset.box !== previous;
  }, { knee: index, previous: previousBox ? previousBox.join(',') : null }, { timeout: SLOW_MS });
  return (await shownKnees(page))[index];
}

function isSquareInside([x0, y0, x1, y1], width, height) {
  return x1 - x0 === y1 - y0 && x0 >= 0 && y0 >= 0 && x1 <= width && y1 <= height;
}

/** Scrolls the whole image to the top of the window (the mouse only reaches what is on screen); returns its rectangle. */
async function showWholeImage(page) {
  await page.evaluate(() => document.querySelector('#detail .overview-stack').scrollIntoView({ block: 'start' }));
  return page.locator('#detail .overview-stack').boundingBox();
}

/** Drags with the mouse from (x, y) by (dx, dy) CSS pixels, in small steps like a hand. */
async function drag(page, x, y, dx, dy) {
  await page.mouse.move(x, y);
  await page.mouse.down();
  await page.mouse.move(x + dx, y + dy, { steps: 8 });
  await page.mouse.up();
}

describe('whole radiographs in the page', { timeout: SUITE_MS }, () => {
  let server;
  let browser;
  let page;
  let scratch;
  let cliWhole;
  let keyboardResult;

  before(async () => {
    requirePrerequisites();
    if (!existsSync(WHOLE_RADIOGRAPH)) {
      throw new Error(`whole radiograph ${WHOLE_RADIOGRAPH} is missing (set OAC_DATASETS to the datasets folder)`);
    }
    scratch = mkdtempSync(path.join(tmpdir(), 'oac-e2e-whole-'));
    ({ server, browser, page } = await openAppSession());
  });

  after(async () => {
    await closeAppSession({ server, browser });
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  async function classifyInPage(files) {
    await page.setInputFiles('#file-input', files);
    return waitForResults(page, files.length);
  }

  /** Moves box 0 three small steps right and one large step down with the keys, then Enter. */
  async function moveFirstBoxWithKeys() {
    const [{ box, step }] = await shownBoxes(page);
    await page.locator('#detail .knee-box[data-index="0"]').focus();
    for (let i = 0; i < 3; i += 1) await page.keyboard.press('ArrowRight');
    // Shift moves ten steps; eight back leave the crop near the joint, where the OOD gate still scores it.
    await page.keyboard.press('Shift+ArrowDown');
    for (let i = 0; i < 8; i += 1) await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Enter');
    return { before: box, expected: [box[0] + 3 * step, box[1] + 2 * step, box[2] + 3 * step, box[3] + 2 * step] };
  }

  it('boxes both knees of a whole bilateral radiograph where the core finds them and scores each like the CLI', { timeout: SLOW_MS }, async () => {
    const status = await classifyInPage([WHOLE_RADIOGRAPH]);
    assert.match(status, /Knee on the left half.*chance of osteoarthritis.*Knee on the right half/);
    const knees = await shownKnees(page);
    const boxes = await shownBoxes(page);
    cliWhole = await runCli([WHOLE_RADIOGRAPH]);
    assert.equal(cliWhole.code, 0, cliWhole.stderr);
    const cliKnees = cliWhole.results[0].knees;
    assert.deepEqual(knees.map((knee) => knee.side), ['left', 'right']);
    assert.deepEqual(cliKnees.map((knee) => knee.side), ['left', 'right']);
    assert.equal(boxes.length, 2, 'one box per knee over the whole image');
    assert.deepEqual(boxes.map((entry) => entry.box), cliKnees.map((knee) => knee.box), 'boxes where the core puts them');
    assert.deepEqual(knees.map((knee) => knee.box), cliKnees.map((knee) => knee.box));
    for (const { box } of boxes) assert.ok(isSquareInside(box, WIDTH, HEIGHT), `box ${box}`);
    knees.forEach((knee, i) => {
      assert.equal(knee.byHand, false);
      assert.ok(Math.abs(knee.pOa - cliKnees[i].p_oa) <= TOLERANCE, `knee ${i}: page ${knee.pOa} vs CLI ${cliKnees[i].p_oa}`);
    });
    // The boxes sit over the whole picture the core drew, labelled by side.
    const labels = await page.$$eval('#detail .knee-box-label', (spans) => spans.map((span) => span.textContent));
    assert.deepEqual(labels, ['Left of image', 'Right of image']);
    const picture = await page.$eval('#detail .overview-canvas', (canvas) => ({ width: canvas.width, height: canvas.height }));
    assert.equal(Math.max(picture.width, picture.height), 1024);
    assert.ok(Math.abs((picture.width * HEIGHT) / picture.height - WIDTH) <= 3, `${picture.width}x${picture.height}`);
    assert.equal(await page.locator('#detail .crop-canvas').count(), 2);
    await screenshot(page, 'whole-radiograph.png');
  });

  it('moves a box with the arrow keys and scores that knee again, leaving the other one as it was', { timeout: SLOW_MS }, async () => {
    const before = await shownKnees(page);
    const { expected } = await moveFirstBoxWithKeys();
    const moved = await waitForHandBox(page, 0, before[0].box);
    assert.deepEqual(moved.box, expected, 'the core kept the square box inside the image as moved');
    assert.deepEqual((await shownBoxes(page))[0].box, expected);
    assert.match(await page.textContent('#detail .knee[data-index="0"] .by-hand'), /Box set by hand/);
    assert.equal(await page.locator('#detail .knee[data-index="0"] .by-hand').isVisible(), true);
    assert.notEqual(moved.pOa, before[0].pOa, 'a new crop gives a new P(OA)');
    assert.deepEqual((await shownKnees(page))[1], before[1], 'the other knee keeps its result');
    assert.equal(await page.evaluate(() => document.activeElement?.dataset.index), '0', 'focus stays on the box');
    assert.match(await page.textContent('#status'), /box set by hand: .*chance of osteoarthritis/);
    keyboardResult = moved;
  });

  it('resizes a box with + and − about its centre and scores it again once the keys rest', { timeout: SLOW_MS }, async () => {
    const before = await shownKnees(page);
    const [{ step }] = await shownBoxes(page);
    await page.locator('#detail .knee-box[data-index="0"]').focus();
    await page.keyboard.press('+');
    await page.keyboard.press('+');
    await page.keyboard.press('-');
    // No Enter: the knee is scored again a moment after the last key.
    const resized = await waitForHandBox(page, 0, before[0].box);
    const [x0, y0, x1, y1] = before[0].box;
    assert.deepEqual(resized.box, [x0 - step, y0 - step, x1 + step, y1 + step]);
    assert.deepEqual((await shownKnees(page))[1], before[1], 'the other knee keeps its result');
    // Escape after a move puts the box back where its knee was scored, and nothing is scored.
    await page.keyboard.press('ArrowUp');
    await page.keyboard.press('Escape');
    assert.deepEqual((await shownBoxes(page))[0].box, resized.box);
    await page.waitForTimeout(1500);
    assert.deepEqual(await shownKnees(page), [resized, before[1]]);
  });

  it('moves and resizes a box with the mouse and scores that knee again', { timeout: SLOW_MS }, async () => {
    const before = await shownKnees(page);
    const stack = await showWholeImage(page);
    const rect = await page.locator('#detail .knee-box[data-index="1"]').boundingBox();
    const scale = WIDTH / stack.width;
    await drag(page, rect.x + rect.width / 2, rect.y + rect.height / 2, -25, 20);
    const moved = await waitForHandBox(page, 1, before[1].box);
    const [x0, y0, x1, y1] = before[1].box;
    assert.ok(Math.abs(moved.box[0] - (x0 - 25 * scale)) <= 2 * scale, `moved left: ${moved.box} from ${before[1].box}`);
    assert.ok(Math.abs(moved.box[1] - (y0 + 20 * scale)) <= 2 * scale, `moved down: ${moved.box} from ${before[1].box}`);
    assert.equal(moved.box[2] - moved.box[0], x1 - x0, 'a move keeps the size');
    assert.ok(isSquareInside(moved.box, WIDTH, HEIGHT));
    assert.deepEqual((await shownKnees(page))[0], before[0], 'the other knee keeps its result');

    // The corner handle resizes it; the opposite corner stays.
    const handle = await page.locator('#detail .knee-box[data-index="1"] .knee-box-handle').boundingBox();
    await drag(page, handle.x + handle.width / 2, handle.y + handle.height / 2, 30, 30);
    const resized = await waitForHandBox(page, 1, moved.box);
    assert.deepEqual(resized.box.slice(0, 2), moved.box.slice(0, 2));
    const grown = (resized.box[2] - resized.box[0]) - (moved.box[2] - moved.box[0]);
    assert.ok(Math.abs(grown - 30 * scale) <= 2 * scale, `grew by ${grown} px, dragged ${30 * scale}`);
    assert.ok(isSquareInside(resized.box, WIDTH, HEIGHT));
    assert.deepEqual((await shownKnees(page))[0], before[0]);
    await screenshot(page, 'whole-radiograph-boxes-moved.png');
  });

  it('scores a box of a file checked before others, as it did when that file was the last one', { timeout: SLOW_MS }, async () => {
    const status = await classifyInPage([WHOLE_RADIOGRAPH, SAMPLES.single]);
    assert.match(status, /^Checked 2 files: 2 classified/);
    // The worker's core now holds the single crop; the whole radiograph is shown and edited again.
    await page.click(`#results-table button.link:text-is("${path.basename(WHOLE_RADIOGRAPH)}")`);
    await page.waitForSelector('#detail .knee-box[data-index="1"]');
    const before = await shownKnees(page);
    assert.deepEqual(before.map((knee) => knee.box), cliWhole.results[0].knees.map((knee) => knee.box));
    const { expected } = await moveFirstBoxWithKeys();
    const moved = await waitForHandBox(page, 0, before[0].box);
    assert.deepEqual(moved.box, expected);
    assert.ok(Math.abs(moved.pOa - keyboardResult.pOa) <= 1e-6, `${moved.pOa} vs ${keyboardResult.pOa} before`);
    assert.deepEqual((await shownKnees(page))[1], before[1]);
    const statuses = await page.$$eval('#results-table tbody tr td:nth-child(5)', (cells) => cells.map((cell) => cell.textContent));
    assert.equal(statuses.filter((text) => /box set by hand/.test(text)).length, 1, statuses.join(' | '));
  });

  it('finds the same boxes in DICOM files made from the JPEG with DCMTK', { timeout: SLOW_MS }, async () => {
    // img2dcm wraps the JPEG itself (JPEG baseline transfer syntax), or takes a BMP: here 8-bit grey, uncompressed.
    const wrapped = path.join(scratch, 'normal_N14-jpeg.dcm');
    const bmp = path.join(scratch, 'normal_N14-grey.bmp');
    const uncompressed = path.join(scratch, 'normal_N14-grey.dcm');
    const steps = [
      ['img2dcm', ['-i', 'JPEG', WHOLE_RADIOGRAPH, wrapped]],
      [PYTHON, ['-c', 'import sys; from PIL import Image; Image.open(sys.argv[1]).convert("L").save(sys.argv[2])', WHOLE_RADIOGRAPH, bmp]],
      ['img2dcm', ['-i', 'BMP', bmp, uncompressed]],
    ];
    for (const [command, args] of steps) {
      const done = spawnSync(command, args, { encoding: 'utf8' });
      assert.equal(done.status, 0, `${command} ${args.join(' ')}: ${done.error?.message ?? done.stderr}`);
    }
    const expected = cliWhole.results[0].knees.map((knee) => knee.box);
    const cli = await runCli([wrapped, uncompressed]);
    assert.equal(cli.code, 0, cli.stderr);
    for (const [i, file] of [wrapped, uncompressed].entries()) {
      await classifyInPage([file]);
      const knees = await shownKnees(page);
      assert.deepEqual((await shownBoxes(page)).map((entry) => entry.box), expected, path.basename(file));
      assert.deepEqual(cli.results[i].knees.map((knee) => knee.box), expected, `CLI, ${path.basename(file)}`);
      knees.forEach((knee, k) => assert.ok(Math.abs(knee.pOa - cli.results[i].knees[k].p_oa) <= TOLERANCE,
        `${path.basename(file)} knee ${k}: page ${knee.pOa} vs CLI ${cli.results[i].knees[k].p_oa}`));
    }
  });

  it('turns a negative film back, finds the same knees and says it did', { timeout: SLOW_MS }, async () => {
    const negative = path.join(scratch, 'normal_N14-negative.png');
    const done = spawnSync(PYTHON, ['-c', 'import sys; from PIL import Image, ImageOps; '
      + 'ImageOps.invert(Image.open(sys.argv[1]).convert("L")).save(sys.argv[2])', WHOLE_RADIOGRAPH, negative], { encoding: 'utf8' });
    assert.equal(done.status, 0, done.stderr);
    await classifyInPage([negative]);
    const knees = await page.$$eval('#detail .knee', (views) => views.map((view) => ({
      inverted: view.dataset.inverted === 'true', noteShown: !view.querySelector('.inverted-note').hidden })));
    assert.deepEqual(knees, [{ inverted: true, noteShown: true }, { inverted: true, noteShown: true }]);
    const expected = cliWhole.results[0].knees.map((knee) => knee.box);
    (await shownBoxes(page)).forEach(({ box }, k) => box.forEach((edge, e) => assert.ok(
      Math.abs(edge - expected[k][e]) <= 0.05 * (expected[k][2] - expected[k][0]), `knee ${k}: ${box} vs ${expected[k]}`)));
  });

  it('refuses noise as not an X-ray, and the page keeps working', { timeout: SLOW_MS }, async () => {
    let seed = 20261130;
    const noise = path.join(scratch, 'noise.png');
    writeFileSync(noise, greyPng(480, 360, () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % 256;
    }));
    assert.match(await classifyInPage([noise]), NOT_A_RADIOGRAPH);
    assert.equal(await page.locator('#detail .knee').count(), 0);
    const cli = await runCli([noise]);
    assert.equal(cli.code, 2);
    assert.match(cli.results[0].error, NOT_A_RADIOGRAPH);
  });

  it('says when no knee joint is found and lets the user draw its box, by keys or by mouse', { timeout: SLOW_MS }, async () => {
    // Grey and smooth like a radiograph, but with nothing shaped like a knee.
    const noKnee = path.join(scratch, 'ramp.png');
    writeFileSync(noKnee, greyPng(480, 360, (x) => Math.round((x * 255) / 479)));
    const status = await classifyInPage([noKnee]);
    assert.match(status, NO_KNEE);
    assert.match(await page.textContent('#detail .no-knee-notice'), NO_KNEE);
    assert.equal(await page.locator('#detail .knee').count(), 0, 'the whole image is never scored as a knee');
    assert.equal(await page.locator('#detail .knee-box').count(), 0);
    assert.equal(await page.locator('#detail .overview-canvas').isVisible(), true, 'the image is shown to draw on');
    const drawButton = page.locator('#detail .draw-box');
    assert.equal(await drawButton.textContent(), "Draw the knee's box");

    // Keys: the button places a box in the middle and focuses it; arrows move it, Enter scores it.
    await drawButton.focus();
    await page.keyboard.press('Enter');
    const [placed] = await shownBoxes(page);
    assert.equal(placed.pending, true);
    assert.deepEqual(placed.box, [180, 120, 300, 240], 'a third of the shorter side, centred');
    assert.equal(await page.evaluate(() => document.activeElement?.classList.contains('knee-box')), true);
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('ArrowLeft');
    await page.keyboard.press('Enter');
    const first = await waitForHandBox(page, 0);
    assert.deepEqual(first.box, [180 - 2 * placed.step, 120, 300 - 2 * placed.step, 240]);
    assert.equal(first.side, 'single');
    assert.equal(await page.locator('#detail .no-knee-notice').isVisible(), false);
    assert.equal((await shownBoxes(page))[0].pending, false);
    assert.match(await page.textContent('#status'), /box set by hand/);

    // Mouse: "add" places another box; a drag on the picture draws it instead.
    assert.equal(await drawButton.textContent(), "Add a missed knee's box");
    await drawButton.click();
    assert.equal((await shownBoxes(page)).length, 2);
    const stack = await showWholeImage(page);
    const scale = 480 / stack.width;
    await drag(page, stack.x + stack.width * 0.05, stack.y + stack.height * 0.05, stack.width * 0.25, stack.width * 0.2);
    const second = await waitForHandBox(page, 1);
    const side = stack.width * 0.25 * scale;
    assert.ok(Math.abs(second.box[0] - 24) <= 2 * scale && Math.abs(second.box[1] - 18) <= 2 * scale, `${second.box}`);
    assert.ok(Math.abs(second.box[2] - second.box[0] - side) <= 2 * scale, `${second.box}, side ${side}`);
    assert.ok(isSquareInside(second.box, 480, 360));
    assert.deepEqual((await shownKnees(page))[0], first, 'the first drawn knee keeps its result');
    assert.equal(await drawButton.isVisible(), false, 'two knees: nothing more to add');
    await screenshot(page, 'no-knee-drawn.png');

    // The CLI has nobody to draw a box: it reports the file with the same notice.
    const cli = await runCli([noKnee]);
    assert.equal(cli.code, 2);
    assert.equal(cli.results[0].ok, false);
    assert.match(cli.results[0].error, NO_KNEE);
  });

  it('had no page error and sent no image anywhere', () => {
    assert.deepEqual(browser.problems, []);
    for (const request of browser.requests) {
      assert.equal(new URL(request.url).origin, server.origin, request.url);
      assert.ok(!request.postData?.length, `request with a body: ${request.url}`);
    }
  });
});
