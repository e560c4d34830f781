// `tools/oac classify`: output format, the meaning of every number, failures, exit codes and
// batching. Runs with the CLI's default model (the trained one, else the placeholder) unless
// OAC_MODEL names another.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { locateModel } from '../../tools/lib/artifacts.mjs';
import { BATCH_OF_TEN, CLI_MODEL, DATASETS, REPO_ROOT, SAMPLES, SUITE_MS, runCli } from './harness.mjs';

const classify = (args, options = {}) => runCli(args, { model: CLI_MODEL, coreDir: null, ...options });
const KNEE_FIELDS = ['side', 'box', 'p_oa', 'oa', 'kl_probs', 'kl_grade', 'kl_set', 'in_distribution', 'oa_logit', 'kl_logits', 'ood_score'];

describe('tools/oac classify', { timeout: SUITE_MS }, () => {
  let card;
  let scratch;

  before(async () => {
    card = (await locateModel(CLI_MODEL)).card;
    scratch = mkdtempSync(path.join(tmpdir(), 'oac-cli-test-'));
  });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('prints a usage message and exits 1 for usage errors', async () => {
    for (const args of [[], ['--no-such-option', SAMPLES.single], ['--batch', '0', SAMPLES.single], ['--model']]) {
      const run = await classify(args, { model: '' });
      assert.equal(run.code, 1, `args ${args.join(' ')}`);
      assert.match(run.stderr, /usage: tools\/oac classify/);
      assert.equal(run.stdout, '');
    }
    const help = await classify(['--help'], { model: '' });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: tools\/oac classify/);
  });

  it('prints one JSON line per file whose numbers follow the model card', async () => {
    const files = [SAMPLES.single, SAMPLES.bilateral, SAMPLES.sixteenBit];
    const run = await classify(files);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.results.map((result) => result.file), files);
    const sigmoid = (x) => 1 / (1 + Math.exp(-x));
    for (const result of run.results) {
      assert.equal(result.ok, true);
      assert.ok(result.knees.length >= 1);
      for (const knee of result.knees) {
        assert.deepEqual(Object.keys(knee), KNEE_FIELDS);
        assert.ok(Math.abs(knee.p_oa - sigmoid(knee.oa_logit / card.calibration.oa_temperature + card.calibration.oa_bias)) < 1e-6);
        assert.equal(knee.oa, knee.p_oa >= card.threshold);
        assert.equal(knee.kl_probs.length, 5);
        assert.equal(knee.kl_logits.length, 5);
        assert.ok(Math.abs(knee.kl_probs.reduce((sum, p) => sum + p, 0) - 1) < 1e-5);
        assert.equal(knee.kl_grade, knee.kl_probs.indexOf(Math.max(...knee.kl_probs)));
        assert.ok(knee.kl_set.length >= 1 && knee.kl_set.includes(knee.kl_grade), 'the KL set holds kl_grade');
        assert.deepEqual(knee.kl_set, [...knee.kl_set].sort((a, b) => a - b));
        assert.equal(knee.in_distribution, knee.ood_score <= card.ood.threshold);
      }
      // Top-level fields are the knee with the highest P(OA).
      const top = result.knees.reduce((best, knee) => (knee.p_oa > best.p_oa ? knee : best));
      for (const field of KNEE_FIELDS) assert.deepEqual(result[field], top[field], field);
    }
    assert.deepEqual(run.results[1].knees.map((knee) => knee.side), ['left', 'right']);
  });

  it('reports files it cannot classify, keeps going, and exits 2', async () => {
    const notAnImage = path.join(scratch, 'notes.png');
    writeFileSync(notAnImage, 'these are notes, not an image');
    const empty = path.join(scratch, 'empty.png');
    writeFileSync(empty, '');
    const missing = path.join(scratch, 'missing.png');
    const run = await classify([notAnImage, SAMPLES.single, empty, missing, scratch]);
    assert.equal(run.code, 2);
    assert.deepEqual(run.results.map((result) => result.ok), [false, true, false, false]);
    assert.match(run.results[0].error, /not a PNG, JPEG/);
    assert.ok(run.results[2].error.length > 0);
    assert.equal(run.results[3].error, 'file not found');
    // A folder is walked for images (a patient's CD); this one holds none, which stderr says.
    assert.match(run.stderr, /: no X-ray image was found in this folder/);
    for (const failed of run.results.filter((result) => !result.ok)) {
      assert.deepEqual(Object.keys(failed), ['file', 'ok', 'error']);
    }
  });

  it('gives the same numbers whatever the batch size, and reads file lists', async () => {
    const files = [...BATCH_OF_TEN, SAMPLES.bilateral, ...BATCH_OF_TEN.slice(0, 7)];
    const batched = await classify(['--batch', '16', ...files]);
    const single = await classify(['--batch', '1', '--files-from', '-'], { input: `${files.join('\n')}\n` });
    assert.equal(batched.code, 0, batched.stderr);
    assert.equal(single.code, 0, single.stderr);
    assert.equal(batched.results.length, files.length);
    batched.results.forEach((result, i) => {
      assert.equal(single.results[i].file, result.file);
      result.knees.forEach((knee, k) => assert.ok(Math.abs(knee.p_oa - single.results[i].knees[k].p_oa) < 1e-5));
    });
    assert.match(batched.stderr, /classify: 18 files in [\d.]+ s/);
  });

  it('flags knees as out of distribution when the OOD score is above the card\'s threshold', async () => {
    const located = await locateModel(CLI_MODEL);
    const strictCard = path.join(scratch, 'strict.json');
    writeFileSync(strictCard, JSON.stringify({ ...located.card, model_file: located.modelPath, ood: { threshold: -1 } }));
    const run = await classify([SAMPLES.single, SAMPLES.bilateral], { model: strictCard });
    assert.equal(run.code, 0, 'an out-of-distribution image still has a result');
    for (const result of run.results) {
      assert.equal(result.in_distribution, false);
      assert.ok(result.knees.every((knee) => knee.in_distribution === false));
    }
  });

  it('classifies thousands of file arguments, as a shell glob over a folder gives them', async () => {
    // Long paths, as a folder of exports has: the command line runs to hundreds of kilobytes.
    const missing = Array.from({ length: 3000 }, (_, i) => path.join(scratch, 'a-folder-of-knee-x-ray-exports', `knee-${i}.png`));
    const files = [SAMPLES.single, ...missing, SAMPLES.bilateral];
    const run = await classify(['--quiet', ...files]);
    assert.equal(run.code, 2, run.stderr);
    assert.deepEqual(run.results.map((result) => result.file), files);
    assert.equal(run.results[0].ok, true);
    assert.equal(run.results.at(-1).ok, true);
    assert.ok(run.results.slice(1, -1).every((result) => !result.ok && /file not found/.test(result.error)));
  });

  it('refuses a model that does not match its card, and a missing one', async () => {
    const located = await locateModel(CLI_MODEL);
    const wrongCard = path.join(scratch, 'wrong.json');
    writeFileSync(wrongCard, JSON.stringify({ ...located.card, model_file: located.modelPath, sha256: '0'.repeat(64) }));
    const corrupted = await classify([SAMPLES.single], { model: wrongCard });
    assert.equal(corrupted.code, 1);
    assert.match(corrupted.stderr, /corrupted or not the one its card describes/);

    const missing = await classify([SAMPLES.single], { model: path.join(scratch, 'nothing.json') });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
  });

  it('checks the tensor names of the model against its card, the one contract', async () => {
    const located = await locateModel(CLI_MODEL);
    const withCard = async (outputs) => {
      const card = path.join(scratch, 'renamed.json');
      writeFileSync(card, JSON.stringify({ ...located.card, model_file: located.modelPath, outputs }));
      return classify([SAMPLES.single], { model: card });
    };
    const renamedInput = await withCard({ ...located.card.outputs, input: 'pixels' });
    assert.equal(renamedInput.code, 1);
    assert.match(renamedInput.stderr, /the model does not match its card: it takes image and gives .*the card names input pixels/);
    const { cam, ...withoutCam } = located.card.outputs;
    assert.ok(cam);
    const unnamedOutput = await withCard(withoutCam);
    assert.equal(unnamedOutput.code, 1);
    assert.match(unnamedOutput.stderr, /"outputs" must name the input and the outputs oa_logit, kl_logits, cam, ood_score/);
  });
});

// Whole radiographs: the knees' boxes against the hand annotations (models/data/full-radiographs-joints.csv).
describe('tools/oac classify on whole radiographs', { timeout: SUITE_MS }, () => {
  const annotated = new Map();
  for (const line of readFileSync(path.join(REPO_ROOT, 'models/data/full-radiographs-joints.csv'), 'utf8').trim().split('\n').slice(1)) {
    const [file, , cx, cy, width] = line.split(',');
    if (!annotated.has(file)) annotated.set(file, []);
    if (cx) annotated.get(file).push({ cx: Number(cx), cy: Number(cy), width: Number(width) });
  }
  const radiograph = (file) => path.join(DATASETS, 'full-radiographs', file);
  const holds = ([x0, y0, x1, y1], { cx, cy }) => x0 <= cx && cx < x1 && y0 <= cy && cy < y1;
  let scratch;
  before(() => { scratch = mkdtempSync(path.join(tmpdir(), 'oac-cli-whole-')); });
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('gives each annotated knee its own box and result, one and two knees alike', async () => {
    const files = ['normal_N14.jpg', 'normal_N24.jpg', 'osteopenia_OP57.jpg', 'osteoporosis_OS10.jpg', 'normal_N11.jpeg'];
    const run = await classify(files.map(radiograph));
    assert.equal(run.code, 0, run.stderr);
    for (const [i, result] of run.results.entries()) {
      const knees = annotated.get(files[i]);
      assert.equal(result.ok, true, files[i]);
      assert.equal(result.knees.length, knees.length, `${files[i]}: one result per knee`);
      assert.deepEqual(result.knees.map((knee) => knee.side), knees.length === 2 ? ['left', 'right'] : ['single']);
      knees.forEach((knee, k) => {
        const [x0, y0, x1, y1] = result.knees[k].box;
        assert.ok(holds(result.knees[k].box, knee), `${files[i]} knee ${k}: box ${result.knees[k].box} misses the joint`);
        assert.equal(x1 - x0, y1 - y0, 'boxes are square');
        assert.ok(Math.abs(x1 - x0 - knee.width) < 0.5 * knee.width, `${files[i]} knee ${k}: box side ${x1 - x0} for a knee ${knee.width} wide`);
      });
    }
  });

  it('finds the same boxes in a DICOM made from the JPEG with DCMTK', async () => {
    const jpeg = radiograph('normal_N14.jpg');
    const dicom = path.join(scratch, 'N14.dcm');
    execFileSync('img2dcm', ['-i', 'JPEG', jpeg, dicom]);
    const run = await classify([jpeg, dicom]);
    assert.equal(run.code, 0, run.stderr);
    const [fromJpeg, fromDicom] = run.results;
    assert.equal(fromDicom.ok, true, fromDicom.error);
    assert.equal(fromDicom.knees.length, 2);
    assert.deepEqual(fromDicom.knees.map((knee) => knee.box), fromJpeg.knees.map((knee) => knee.box));
  });

  it('says plainly that no knee was found in an image without one, and refuses noise as not an X-ray', async () => {
    const pgm = (name, value) => {
      const pixels = Buffer.alloc(640 * 480);
      for (let i = 0; i < pixels.length; i += 1) pixels[i] = value(i);
      writeFileSync(path.join(scratch, `${name}.pgm`), Buffer.concat([Buffer.from('P5 640 480 255\n'), pixels]));
      execFileSync('convert', [path.join(scratch, `${name}.pgm`), path.join(scratch, `${name}.bmp`)]);
      return path.join(scratch, `${name}.bmp`);
    };
    const run = await classify([pgm('ramp', (i) => Math.round(((i % 640) * 255) / 639)),
      pgm('noise', (i) => (i * 2654435761) >>> 24)]);
    assert.equal(run.code, 2);
    assert.equal(run.results[0].ok, false);
    assert.match(run.results[0].error, /^No knee joint was found in this image/);
    assert.equal(run.results[1].ok, false);
    assert.match(run.results[1].error, /^This picture is fine grain or noise throughout/);
  });
});
