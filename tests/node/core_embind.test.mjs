// The Embind surface of build/wasm/oac_core.mjs as the web worker and the CLI use it.
// run: OAC_WASM_BUILD_DIR=build/wasm node --test tests/node/core_embind.test.mjs
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { WHOLE_RADIOGRAPH } from '../../tools/lib/datasets.mjs';
import { MODEL_CARD, REPO_ROOT } from '../../tools/lib/paths.mjs';
import { greyPng } from '../../tools/lib/png.mjs';

const wasmDir = process.env.OAC_WASM_BUILD_DIR || path.join(REPO_ROOT, 'build/wasm');
const card = fs.readFileSync(MODEL_CARD, 'utf8');
const { preprocess, threshold } = JSON.parse(card);
const tensorLength = 3 * preprocess.input_size * preprocess.input_size;
const { default: createOacCore } = await import(pathToFileURL(path.join(wasmDir, 'oac_core.mjs')).href);
// Node 20's fetch() cannot read file URLs, so the binary is handed over directly.
const oac = await createOacCore({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'oac_core.wasm')) });

// 8-bit grey PNG of a bright diamond on a textured background (contrast, no uniform borders).
function kneePng(width, height) {
  return new Uint8Array(greyPng(width, height, (x, y) => {
    const distance = Math.abs(x - width / 2) + Math.abs(y - height / 2);
    return 40 + Math.max(0, 120 - distance) + ((x * 7 + y * 3) % 5);
  }));
}

test('prepare returns knees and heap views of tensor and crop', () => {
  const core = new oac.Core(card);
  const result = core.prepare(kneePng(120, 100));
  assert.equal(result.ok, true);
  assert.equal(result.error, '');
  // A joint crop: its centre square, as the training crops were framed.
  assert.deepEqual(result.knees, [{
    side: 'single', patient_side: '', box: [10, 0, 110, 100], by_hand: false, inverted: false, width: 100, height: 100,
  }]);
  assert.deepEqual([result.width, result.height, result.notice], [120, 100, '']);
  const tensor = core.tensor(0);
  assert.ok(tensor instanceof Float32Array);
  assert.equal(tensor.length, tensorLength);
  // Crop values lie in [0, 1], so channel c lies between (0 - mean) / std and (1 - mean) / std.
  preprocess.mean.forEach((mean, channel) => {
    const plane = tensor.subarray(channel * tensorLength / 3, (channel + 1) * tensorLength / 3);
    const [low, high] = [-mean / preprocess.std[channel], (1 - mean) / preprocess.std[channel]];
    assert.ok(plane.every((value) => value >= low - 1e-6 && value <= high + 1e-6));
  });
  assert.equal(core.crop(0).length, 100 * 100);
  assert.equal(core.tensor(1).length, 0);
  core.delete();
});

test('a wide image gives left and right knees; ArrayBuffer input works', () => {
  const core = new oac.Core(card);
  const png = kneePng(400, 100);
  const result = core.prepare(png.buffer.slice(png.byteOffset, png.byteOffset + png.byteLength));
  assert.equal(result.ok, true);
  assert.deepEqual(result.knees.map((knee) => knee.side), ['left', 'right']);
  assert.equal(core.tensor(1).length, tensorLength);
  core.delete();
});

test('errors come back as values and the core keeps working', () => {
  const core = new oac.Core(card);
  const png = kneePng(64, 64);
  const empty = core.prepare(new Uint8Array(0));
  assert.equal(empty.ok, false);
  assert.equal(empty.error, 'The file is empty.');
  assert.deepEqual(empty.knees, []);
  assert.equal(core.prepare(new Uint8Array(100_000_001)).error,
    'The file is too large (100.0 MB; the limit is 100.0 MB).');
  assert.equal(core.tensor(0).length, 0);
  assert.equal(core.prepare(png.subarray(0, png.length - 20)).error,
    'The PNG file is truncated: it ends before the image data is complete.');
  assert.equal(core.prepare(new TextEncoder().encode('GIF89a')).error, 'The file is not a PNG, JPEG or BMP image.');
  assert.equal(core.prepare('not bytes').error, 'prepare() needs the file contents as a Uint8Array or ArrayBuffer.');
  assert.equal(core.prepare(png).ok, true);
  core.delete();
});

test('a bad card is reported by every call', () => {
  const core = new oac.Core('{"preprocess": {}}');
  const message = 'The model card has no "preprocess.input_size" field.';
  assert.equal(core.prepare(kneePng(64, 64)).error, message);
  const prediction = core.interpret(0, new Float32Array(5), 0);
  assert.equal(prediction.ok, false);
  assert.equal(prediction.error, message);
  core.delete();
});

test('interpret calibrates the outputs', () => {
  const core = new oac.Core(card);
  const prediction = core.interpret(0, new Float32Array([0, 0, 3, 0, 0]), 1e31);
  // The names and order of the CLI's JSON and the Python module: web/engine.js passes the prediction through.
  assert.deepEqual(Object.keys(prediction), ['ok', 'error', 'p_oa', 'oa', 'kl_probs', 'kl_grade', 'kl_set', 'in_distribution']);
  assert.equal(prediction.ok, true);
  // logit 0 whatever the temperature: P(OA) is the sigmoid of the card's bias
  const { oa_bias: bias } = JSON.parse(card).calibration;
  assert.ok(Math.abs(prediction.p_oa - 1 / (1 + Math.exp(-bias))) < 1e-6);
  assert.equal(prediction.oa, prediction.p_oa >= threshold);
  assert.equal(prediction.kl_grade, 2);
  assert.equal(prediction.kl_probs.length, 5);
  assert.ok(Math.abs(prediction.kl_probs.reduce((a, b) => a + b) - 1) < 1e-6);
  assert.equal(prediction.in_distribution, false);
  assert.equal(core.interpret(0, [1, 2], 0).error, 'interpret() needs exactly 5 KL logits.');
  core.delete();
});

test('interpret gives the KL prediction set as a list of grades', () => {
  const withSet = (threshold) => JSON.stringify({
    ...JSON.parse(card),
    calibration: { oa_temperature: 1, oa_bias: 0, kl_temperature: 1 },
    kl_set: { coverage: 0.9, threshold },
  });
  // Probabilities 0.3, 0.05, 0.55, 0.05, 0.05: 0.55 + 0.3 exceeds 0.8 before grade 1 would join.
  const logits = new Float32Array([0.3, 0.05, 0.55, 0.05, 0.05].map(Math.log));
  for (const [threshold, expected] of [[0.8, [0, 2]], [0, [2]], [1, [0, 1, 2, 3, 4]]]) {
    const core = new oac.Core(withSet(threshold));
    const prediction = core.interpret(0, logits, 0);
    assert.equal(prediction.ok, true, prediction.error);
    assert.deepEqual(prediction.kl_set, expected, `threshold ${threshold}`);
    assert.ok(prediction.kl_set.includes(prediction.kl_grade));
    core.delete();
  }
  const product = new oac.Core(card);
  assert.ok(Array.isArray(product.interpret(0, logits, 0).kl_set));
  product.delete();
  const broken = new oac.Core(JSON.stringify({ ...JSON.parse(card), kl_set: { coverage: 0.9 } }));
  assert.equal(broken.interpret(0, logits, 0).error, 'The model card has no "kl_set.threshold" field.');
  broken.delete();
});

test('renderCam returns an RGBA view of the crop, or an empty one', () => {
  const core = new oac.Core(card);
  core.prepare(kneePng(120, 100));
  const cam = new Float32Array(8 * 8).map((_, i) => i);
  const full = core.renderCam(0, cam, 8, 8, 0.5, 0);
  assert.ok(full.rgba instanceof Uint8Array);
  assert.deepEqual([full.width, full.height, full.rgba.length], [100, 100, 100 * 100 * 4]);
  assert.equal(full.rgba[3], 255);
  for (const unusable of [core.renderCam(1, cam, 8, 8, 0.5, 0), core.renderCam(0, cam, 4, 4, 0.5, 0)]) {
    assert.deepEqual([unusable.width, unusable.height, unusable.rgba.length], [0, 0, 0]);
  }
  core.delete();
});

test('cropRgba and renderCam fit the crop within the display size', () => {
  const core = new oac.Core(card);
  const [knee] = core.prepare(kneePng(400, 300)).knees;
  assert.ok(knee.width > 120);
  const crop = core.crop(0);
  const grey = core.cropRgba(0, 0);
  assert.deepEqual([grey.width, grey.height], [knee.width, knee.height]);
  assert.equal(grey.rgba[4 * 1234], Math.round(crop[1234] * 255));
  assert.equal(grey.rgba[4 * 1234 + 2], grey.rgba[4 * 1234]);
  const small = core.cropRgba(0, 120);
  assert.deepEqual([small.width, small.height, small.rgba.length], [120, 120, 120 * 120 * 4]);
  // Zero opacity leaves the fitted grey crop, so both views line up pixel for pixel.
  const smallGrey = small.rgba.slice();
  const heat = core.renderCam(0, new Float32Array(4).map((_, i) => i), 2, 2, 0, 120);
  assert.deepEqual(heat.rgba, smallGrey);
  assert.equal(core.cropRgba(1, 120).rgba.length, 0);
  core.delete();
});

test('fileSizeProblem gives the core\'s own sentence about a file\'s size', () => {
  assert.equal(oac.fileSizeProblem(oac.maxFileBytes()), '', 'a file at the limit the page is told is read');
  assert.equal(oac.fileSizeProblem(oac.maxFileBytes() + 1), 'The file is too large (100.0 MB; the limit is 100.0 MB).');
  assert.equal(oac.fileSizeProblem(1234), '');
  assert.equal(oac.fileSizeProblem(0), 'The file is empty.');
  assert.equal(oac.fileSizeProblem(150e6), 'The file is too large (150.0 MB; the limit is 100.0 MB).');
});

test('a whole radiograph gives each knee a square box in decoded pixels; setBox re-crops one by hand', () => {
  const core = new oac.Core(card);
  const result = core.prepare(new Uint8Array(fs.readFileSync(WHOLE_RADIOGRAPH)));
  assert.equal(result.ok, true, result.error);
  assert.deepEqual([result.width, result.height], [2180, 2660]);
  assert.equal(result.notice, '');
  assert.deepEqual(result.knees.map((knee) => knee.side), ['left', 'right']);
  for (const knee of result.knees) {
    const [x0, y0, x1, y1] = knee.box;
    assert.equal(x1 - x0, y1 - y0);
    assert.deepEqual([knee.width, knee.height], [x1 - x0, y1 - y0]);
    assert.equal(knee.by_hand, false);
    assert.equal(knee.inverted, false);
  }
  const overview = core.overviewRgba(512);
  assert.deepEqual([overview.width, overview.height], [420, 512]);
  assert.equal(overview.rgba.length, 420 * 512 * 4);

  const moved = core.setBox(1, 1200, 300, 1800, 700);  // a rectangle: made square about its centre
  assert.equal(moved.ok, true, moved.error);
  assert.deepEqual(moved.knee.box, [1200, 200, 1800, 800]);
  assert.equal(moved.knee.by_hand, true);
  assert.equal(moved.knee.side, 'right');
  assert.equal(core.tensor(1).length, tensorLength);
  const added = core.setBox(2, 0, 0, 50, 50);
  assert.equal(added.ok, true);
  assert.equal(core.setBox(9, 0, 0, 50, 50).ok, false);
  assert.match(core.setBox(0, 10, 10, 11, 11).error, /at least 2 pixels/);
  core.delete();
});

test('squareBox gives the square the core would crop for a box a person proposes, as the page draws it', () => {
  const square = (...edges) => oac.squareBox(2180, 2660, ...edges);
  assert.deepEqual(square(1200, 300, 1800, 700), { ok: true, error: '', box: [1200, 200, 1800, 800] });
  assert.deepEqual(square(-40.4, 10, 559.6, 610).box, [0, 10, 600, 610], 'rounded, then moved inside with its side');
  assert.deepEqual(square(2000, 2500, 2100, 2600).box, [2000, 2500, 2100, 2600]);
  assert.deepEqual(square(1000, 1000, 1000, 1000).box, [956, 956, 1043, 1043], '4% of the shorter side at least');
  assert.deepEqual(square(0, 0, 5000, 5000).box, [0, 480, 2180, 2660], 'no larger than the image');
  assert.deepEqual(square(0, NaN, 10, 10), { ok: false, error: 'The box must be four numbers.', box: null });
  // setBox crops what squareBox shows.
  const core = new oac.Core(card);
  assert.equal(core.prepare(new Uint8Array(fs.readFileSync(WHOLE_RADIOGRAPH))).ok, true);
  assert.deepEqual(core.setBox(0, 1000, 1000, 1010, 1010).knee.box, square(1000, 1000, 1010, 1010).box);
  core.delete();
});

// A picture as grey and smooth as a radiograph, with nothing shaped like a knee.
const smoothRamp = () => new Uint8Array(greyPng(640, 480, (x) => Math.round((x * 255) / 639)));

test('noise is refused as not a radiograph, and the core keeps working', () => {
  const core = new oac.Core(card);
  const noise = new Uint8Array(greyPng(640, 480, (x, y) => ((x * 2654435761 + y * 40503) >>> 24) & 255));
  const refused = core.prepare(noise);
  assert.equal(refused.ok, false);
  assert.match(refused.error, /^This picture is fine grain or noise throughout/);
  assert.equal(core.prepare(smoothRamp()).ok, true);
  core.delete();
});

test('an image without a knee decodes, says so, and takes a box drawn by hand', () => {
  const core = new oac.Core(card);
  const result = core.prepare(smoothRamp());
  assert.equal(result.ok, true, result.error);
  assert.equal(result.knees.length, 0);
  assert.match(result.notice, /^No knee joint was found in this image/);
  const drawn = core.setBox(0, 100, 100, 300, 300);
  assert.equal(drawn.ok, true);
  assert.equal(drawn.knee.side, 'single');
  assert.equal(drawn.knee.by_hand, true);
  core.delete();
});
