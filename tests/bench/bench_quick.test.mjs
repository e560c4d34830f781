// `tools/bench/bench.mjs --quick` runs end to end and writes well-formed results.json and RESULTS.md. Times are
// only checked to be positive numbers: this machine may be busy, and speed targets are not tests.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { REPO_ROOT, requirePrerequisites } from '../e2e/harness.mjs';

function runQuickBench(out) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(REPO_ROOT, 'tools', 'bench', 'bench.mjs'), '--quick', '--out', out],
      { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'pipe'] });
    const stderr = [];
    child.stderr.on('data', (chunk) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr: Buffer.concat(stderr).toString('utf8') }));
  });
}

function assertTiming(summary, what) {
  assert.ok(summary && summary.n >= 1, `${what}: no runs`);
  for (const key of ['median', 'min', 'max']) {
    assert.ok(Number.isFinite(summary[key]) && summary[key] > 0, `${what}: ${key} is ${summary[key]}`);
  }
  assert.ok(summary.min <= summary.median && summary.median <= summary.max, `${what}: min <= median <= max`);
}

describe('tools/bench/bench.mjs --quick', { timeout: 30 * 60_000 }, () => {
  let out;
  let results;
  let markdown;

  before(async () => {
    requirePrerequisites();
    out = mkdtempSync(path.join(tmpdir(), 'oac-bench-'));
    const { code, stderr } = await runQuickBench(out);
    assert.equal(code, 0, `the quick benchmark failed:\n${stderr}`);
    results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    markdown = readFileSync(path.join(out, 'RESULTS.md'), 'utf8');
  });

  after(() => {
    if (out) rmSync(out, { recursive: true, force: true });
  });

  it('times bare inference in onnxruntime-node and onnxruntime-web with 1 and 2 threads', () => {
    assert.equal(results.quick, true);
    assert.deepEqual(results.inference.map((job) => job.runtime), ['node', 'web', 'web']);
    assert.deepEqual(results.inference.slice(1).map((job) => job.threads), [1, 2]);
    for (const job of results.inference) {
      for (const id of ['fp32', 'int8']) {
        const timing = job.timings.find((entry) => entry.id === id);
        assertTiming(timing?.ms, `${job.runtime} ${job.threads} ${id}`);
      }
    }
  });

  it('reports accuracy of the int8 model next to the fp32 one', () => {
    const [fp32, int8] = results.accuracy.models;
    assert.equal(fp32.id, 'fp32');
    assert.equal(int8.id, 'int8');
    assert.equal(fp32.maxAbsDeltaPOa, 0, 'the reference differs from itself by nothing');
    assert.ok(int8.maxAbsDeltaPOa >= 0 && int8.maxAbsDeltaPOa <= 1);
    for (const model of results.accuracy.models) assert.ok(model.auc === null || (model.auc >= 0 && model.auc <= 1));
  });

  it('measures the app end to end, preprocessing, start, memory and batch for both models', () => {
    assert.deepEqual(results.browser.map((app) => app.id), ['fp32', 'int8']);
    for (const app of results.browser) {
      assert.equal(Object.keys(app.endToEnd).length, 7, 'four images and the 12-bit DICOM film three ways');
      for (const [label, entry] of Object.entries(app.endToEnd)) {
        assertTiming(entry.endToEndMs, `${app.id} ${label} end to end`);
        assertTiming(entry.inferenceMs, `${app.id} ${label} inference`);
        assert.ok(entry.endToEndMs.median >= entry.inferenceMs.median, 'end to end includes inference');
        assert.ok(Number.isFinite(entry.glueOverhead.median));
      }
      const byFile = Object.fromEntries(Object.values(app.endToEnd).map((entry) => [entry.file, entry]));
      assert.equal(byFile['NormalG0 (468).png'].knees, 2, 'the 640x161 image shows two knees');
      assert.equal(byFile['normal_N14.jpg'].knees, 2, 'the whole bilateral radiograph shows two knees');
      for (const film of ['film12.dcm', 'film12-j2k.dcm', 'film12-jpeg-lossless-sv1.dcm']) {
        assert.equal(byFile[film].knees, 2, `${film}: the film as DICOM shows both knees`);
      }
      assert.equal(Object.values(app.endToEnd)[1].file, 'normal_N14.jpg', 'the whole radiograph next to the single crop');
      for (const [label, entry] of Object.entries(app.preprocessing)) {
        assertTiming(entry.coreMs, `${app.id} ${label} core`);
        assertTiming(entry.javascriptMs, `${app.id} ${label} javascript`);
      }
      assert.ok(app.start.coldMs > 0 && app.start.warmMs.median > 0);
      assert.ok(app.start.coldBytes.model > 0, 'a cold start downloads the model');
      assert.equal(app.start.warmBytes.model, 0, 'a warm start takes the model from the cache');
      assert.ok(app.memory.rendererPeakMiB > 0);
      assert.ok(app.batch.imagesPerSecond > 0);
    }
  });

  it('checks every target and writes them as a markdown table', () => {
    assert.equal(results.targets.checks.length, 12, 'end to end, whole radiograph vs two crops, two compressed films vs '
      + 'uncompressed, glue for each of 4 images, preprocessing, start, transfer, memory');
    const whole = results.targets.checks.find((check) => check.name.startsWith('whole bilateral radiograph'));
    assert.equal(whole?.target, '<= 2.5x');
    assert.ok(whole.value > 0);
    const films = results.targets.checks.filter((check) => check.name.endsWith('film end to end / uncompressed'));
    assert.deepEqual(films.map((check) => check.target), ['<= 1.5x', '<= 1.5x']);
    for (const film of films) assert.ok(film.value > 0, film.name);
    for (const check of results.targets.checks) assert.equal(typeof check.met, 'boolean', check.name);
    assert.match(markdown, /^# Benchmark results/m);
    assert.match(markdown, /^## Targets\n\n.*\n\n\| target \| measured \| goal \| met \|\n\| --- \| --- \| --- \| --- \|\n(\| .+ \|\n){12}/m);
    assert.match(markdown, /^## Bare inference/m);
    assert.match(markdown, /^## Accuracy of the int8 fast path/m);
    assert.match(markdown, /Quick setting/);
  });
});
