// The Node half of tools/bench/bench.mjs: bare inference times and accuracy of ONNX models under one ONNX
// Runtime setting. onnxruntime-web fixes its thread count when its WASM module starts, so bench.mjs
// runs each runtime/thread setting in a child process of its own:
//
//   node tools/bench/bench_inference.mjs JOB.json   → one JSON object on stdout
//
// JOB: { runtime: 'node' | 'web', threads, sample: image file, warmup, repeats,
//        timings: [{ id, model: card or .onnx, sessionOptions }],
//        accuracy: null | { files: [{ file, positive: bool | null, klGrade? }], models: [{ id, model, sessionOptions }] } }
// Every model runs through the product's own engine (web/engine.js) and WASM core, with the outputs
// the page fetches (logits, OOD score and CAM), so these are the numbers the app and CLI get.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { KneeClassifier } from '../../web/engine.js';
import { loadCoreModule } from '../app/classify.mjs';
import { locateModel } from '../lib/artifacts.mjs';
import { commandLineOrExit } from '../lib/command_line.mjs';

const require = createRequire(import.meta.url);

async function loadRuntime(runtime, threads) {
  if (runtime === 'node') return { ort: (await import('onnxruntime-node')).default, executionProviders: ['cpu'], threadOptions: { intraOpNumThreads: threads } };
  if (runtime === 'web') {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.wasmPaths = `${path.dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'))}/`;
    ort.env.wasm.numThreads = threads;
    return { ort, executionProviders: ['wasm'], threadOptions: {} };
  }
  throw new Error(`unknown runtime ${runtime}: use node or web`);
}

/** median, min, max and count of a list of numbers. */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
  return { median, min: sorted[0], max: sorted[sorted.length - 1], n: sorted.length };
}

/** Area under the ROC curve: the chance that a random positive scores above a random negative (ties half). */
export function rocAuc(scores, positives) {
  const ranked = scores.map((score, i) => ({ score, positive: positives[i] })).sort((a, b) => a.score - b.score);
  let rankSumOfPositives = 0;
  for (let start = 0; start < ranked.length;) {
    let end = start;
    while (end < ranked.length && ranked[end].score === ranked[start].score) end += 1;
    const midrank = (start + end + 1) / 2; // ranks are 1-based; tied scores share their mean rank
    for (let i = start; i < end; i += 1) if (ranked[i].positive) rankSumOfPositives += midrank;
    start = end;
  }
  const positiveCount = positives.filter(Boolean).length;
  const negativeCount = positives.length - positiveCount;
  if (!positiveCount || !negativeCount) return null;
  return (rankSumOfPositives - (positiveCount * (positiveCount + 1)) / 2) / (positiveCount * negativeCount);
}

async function createClassifier(runtime, coreModule, model, sessionOptions, kneesPerRun) {
  const located = await locateModel(model);
  const started = performance.now();
  const classifier = await KneeClassifier.create({
    ort: runtime.ort,
    coreModule,
    cardText: located.cardText,
    modelBytes: await readFile(located.modelPath),
    executionProviders: runtime.executionProviders,
    sessionOptionOverrides: { ...runtime.threadOptions, ...sessionOptions },
    kneesPerRun,
  });
  return { classifier, createMs: performance.now() - started, inputSize: located.card.preprocess.input_size };
}

async function timeInference(runtime, coreModule, job, { id, model, sessionOptions = {} }) {
  const { classifier, createMs, inputSize } = await createClassifier(runtime, coreModule, model, sessionOptions);
  const prepared = await classifier.prepare(new Uint8Array(await readFile(job.sample)));
  if (!prepared.ok) throw new Error(`${job.sample}: ${prepared.error}`);
  const tensors = [prepared.knees[0].tensor];
  const times = [];
  for (let run = 0; run < job.warmup + job.repeats; run += 1) {
    const started = performance.now();
    await classifier.infer(tensors, { withCam: true });
    if (run >= job.warmup) times.push(performance.now() - started);
  }
  await classifier.dispose();
  process.stderr.write(`bench: ${job.runtime} ${job.threads} thread(s) ${id}: ${summarize(times).median.toFixed(0)} ms\n`);
  return { id, inputSize, createMs, ms: summarize(times) };
}

const mean = (values) => values.reduce((a, b) => a + b, 0) / values.length;

/**
 * P(OA) and KL grade of every file under each model; per model its AUC, KL accuracy (files with a `klGrade`)
 * and how far its P(OA) and KL grades are from the first model's.
 */
async function measureAccuracy(runtime, coreModule, { files, models }) {
  const readBytes = async (file) => new Uint8Array(await readFile(file));
  const firstModel = [];
  const results = [];
  const graded = files.map((entry, i) => [entry.klGrade, i]).filter(([grade]) => Number.isInteger(grade));
  // A file whose `positive` is null (KL1, for an AUC of KL >= 2 against KL0) counts for the rest only.
  const labelled = files.map((entry, i) => i).filter((i) => typeof files[i].positive === 'boolean');
  for (const { id, model, sessionOptions = {} } of models) {
    const { classifier } = await createClassifier(runtime, coreModule, model, sessionOptions);
    const started = performance.now();
    const byFile = [];
    for await (const result of classifier.classifyFiles(files.map((entry) => entry.file), readBytes)) {
      if (!result.ok) throw new Error(`${result.file}: ${result.error}`);
      byFile.push({ pOa: result.p_oa, klGrade: result.kl_grade });
    }
    const seconds = (performance.now() - started) / 1000;
    await classifier.dispose();
    if (!firstModel.length) firstModel.push(...byFile);
    const deltas = byFile.map(({ pOa }, i) => Math.abs(pOa - firstModel[i].pOa));
    results.push({
      id,
      files: files.length,
      auc: rocAuc(labelled.map((i) => byFile[i].pOa), labelled.map((i) => files[i].positive)),
      maxAbsDeltaPOa: Math.max(...deltas),
      meanAbsDeltaPOa: mean(deltas),
      klGradeAgreement: mean(byFile.map(({ klGrade }, i) => Number(klGrade === firstModel[i].klGrade))),
      klAccuracy: graded.length ? mean(graded.map(([grade, i]) => Number(byFile[i].klGrade === grade))) : null,
      imagesPerSecond: files.length / seconds,
    });
    process.stderr.write(`bench: accuracy ${id}: AUC ${results.at(-1).auc?.toFixed(4)} on ${files.length} files\n`);
  }
  return results;
}

async function main(jobFile) {
  const job = JSON.parse(await readFile(jobFile, 'utf8'));
  const runtime = await loadRuntime(job.runtime, job.threads);
  const coreModule = await loadCoreModule();
  const timings = [];
  for (const entry of job.timings ?? []) timings.push(await timeInference(runtime, coreModule, job, entry));
  const accuracy = job.accuracy ? await measureAccuracy(runtime, coreModule, job.accuracy) : null;
  return { runtime: job.runtime, threads: job.threads, timings, accuracy };
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  const { positionals: [jobFile] } = commandLineOrExit('bench_inference', 'usage: node tools/bench/bench_inference.mjs JOB.json\n',
    { positionals: [1, 1] });
  try {
    process.stdout.write(`${JSON.stringify(await main(jobFile))}\n`);
  } catch (error) {
    process.stderr.write(`bench_inference: ${error.message}\n`);
    process.exit(1);
  }
}
