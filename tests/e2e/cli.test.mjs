// `tools/oac classify`: output format, the meaning of every number, failures, exit codes and
// batching. Runs with the CLI's default model (the trained one, else the placeholder) unless
// OAC_MODEL names another.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { locateModel } from '../../tools/artifacts.mjs';
import { BATCH_OF_TEN, CLI_MODEL, SAMPLES, SUITE_MS, runCli } from './harness.mjs';

const classify = (args, options = {}) => runCli(args, { model: CLI_MODEL, coreDir: null, ...options });
const KNEE_FIELDS = ['side', 'p_oa', 'oa', 'kl_probs', 'kl_grade', 'kl_set', 'in_distribution', 'oa_logit', 'kl_logits', 'ood_score'];

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
        assert.ok(Math.abs(knee.p_oa - sigmoid(knee.oa_logit / card.calibration.oa_temperature)) < 1e-6);
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
    assert.deepEqual(run.results.map((result) => result.ok), [false, true, false, false, false]);
    assert.match(run.results[0].error, /not a PNG, JPEG/);
    assert.ok(run.results[2].error.length > 0);
    assert.equal(run.results[3].error, 'file not found');
    assert.equal(run.results[4].error, 'this is a folder, not an image file');
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
});
