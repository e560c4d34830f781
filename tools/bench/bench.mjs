#!/usr/bin/env node
// `tools/oac bench`: one side-by-side speed benchmark on this machine, written to DIR/results.json and
// DIR/RESULTS.md (default tools/bench/). It measures
//   - bare inference of the model computed in fp32 and in int8 (the shipped model is one of them: an int8
//     model is compared with the fp32 export it was quantised from, kept in models/reference/; an fp32
//     model is quantised here with tools/model/quantize_onnx.py), and of a 299-px export: onnxruntime-node, onnxruntime-web (WASM) in Node with 1 and 2 threads, graph
//     optimisation levels, and the same model in headless Chromium inside the app's worker;
//   - accuracy of the int8 model against the fp32 one in onnxruntime-web (AUC, max |delta P(OA)|);
//   - in the built app, per model: cold and warm start, bytes served, end-to-end time per image (224-px
//     PNG, a whole 2180x2660 bilateral radiograph JPEG, 640x161 RGB PNG, 2048x2048 16-bit PNG) with the glue
//     overhead around inference, and a whole 12-bit film as DICOM uncompressed, JPEG 2000 and JPEG Lossless; the
//     C++ core's preprocessing against a canvas + JavaScript baseline, peak memory and batch throughput.
// Inputs come from the shared datasets; the 2048x2048 16-bit file is derived from one of them into
// build/bench/, with everything else the benchmark builds (models, app copies).

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWeb } from '../app/build_web.mjs';
import { locateModel, sha256OfFile } from '../lib/artifacts.mjs';
import { commandLineOrExit } from '../lib/command_line.mjs';
import { SAMPLES, WHOLE_RADIOGRAPH, parseCsvLine } from '../lib/datasets.mjs';
import { DATASETS, REPO_ROOT } from '../lib/paths.mjs';
import { measureApp } from './bench_browser.mjs';
import { summarize } from './bench_inference.mjs';

export const PYTHON = '/usr/bin/python3';
// results.json and RESULTS.md live beside the benchmark.
const DEFAULT_OUT = path.dirname(fileURLToPath(import.meta.url));
const TMP = path.join(REPO_ROOT, 'build', 'bench');
const SPLIT = path.join(REPO_ROOT, 'models', 'data', 'split.csv');
// Folding the exporter's DequantizeLinear weights into fp32 constants when the session loads: ONNX Runtime
// keeps them as per-run nodes by default (to preserve QDQ groups), which only a QDQ model needs.
const FOLD_WEIGHTS = { extra: { session: { disable_quant_qdq: '1' } } };
const OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'];
// The id of the app built with --compare's model.
const COMPARED = 'compared';
// The int8 app's warm time per knee may grow this much against the model compared.
const COMPARED_SLOWDOWN = 1.10;

const SETTINGS = {
  full: { warmup: 2, repeats: 15, browserRepeats: 10, warmStarts: 3, batchFiles: 100, accuracyFiles: 300, calibrationImages: 64 },
  quick: { warmup: 1, repeats: 2, browserRepeats: 2, warmStarts: 1, batchFiles: 4, accuracyFiles: 8, calibrationImages: 4 },
};

const TARGETS = {
  endToEndPerKneeMs: 150,
  // A whole radiograph adds decoding a large JPEG and finding both knee joints to two knees' work.
  wholeRadiographVsTwoCrops: 2.5,
  glueOverhead: 0.10,
  preprocessingSpeedup: 2,
  coldStartMs: 3000,
  modelTransferBytes: 25e6,
  memoryPerModelByte: 3,
  // Decoding a compressed film in the codec adds to the core's own work on the same pixels.
  compressedFilmVsUncompressed: 1.5,
};

const USAGE = `usage: tools/oac bench [--quick] [--out DIR] [--model CARD_OR_ONNX]
       tools/oac bench --render DIR/results.json

Benchmarks inference (onnxruntime-node, onnxruntime-web in Node and in Chromium), the int8 fast path
and its accuracy, and the web app end to end (start, per-image latency, preprocessing, memory,
throughput). Writes DIR/results.json and DIR/RESULTS.md (default DIR: tools/bench/).

  --quick               a tiny setting (few repeats and files) that only proves the benchmark runs
  --out DIR             where results.json and RESULTS.md go (default tools/bench/)
  --model CARD_OR_ONNX  the model to measure (default: the shipped one, as the app builds it), with its
                        int8 quantisation, or, if it is int8, the fp32 export in models/reference/
  --render RESULTS      measure nothing: write RESULTS.md (and the target checks) again from a results.json
  --compare CARD        also measure this model's app (e.g. the previous release's card) in the same run,
                        and report the int8 app's warm time per knee against it
`;

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  out: { type: 'string', default: DEFAULT_OUT },
  model: { type: 'string', default: '' },
  render: { type: 'string', default: '' },
  compare: { type: 'string', default: '' },
};

const log = (message) => process.stderr.write(`bench: ${message}\n`);

export function run(command, args, { env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    const stdout = [];
    child.stdout.on('data', (chunk) => stdout.push(chunk));
    child.on('error', (error) => reject(new Error(`${command} could not start: ${error.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(new Error(`${path.basename(command)} ${args.slice(0, 2).join(' ')} failed (exit ${code})`));
    });
  });
}

export const PYTHON_ENV = {
  PYTHONPATH: [path.join(process.env.OAC_NATIVE_BUILD_DIR ?? path.join(REPO_ROOT, 'build', 'native'), 'python'),
    path.join(REPO_ROOT, 'tools')].join(path.delimiter),
  OAC_DATASETS: DATASETS,
};

// ---------------------------------------------------------------------------------------------
// Inputs

// The end-to-end images, by the labels results.json and RESULTS.md use; the single crop comes first.
const IMAGE_LABELS = {
  single: '224-px PNG (8-bit grey)',
  whole: '2180x2660 JPEG (whole bilateral radiograph)',
  bilateral: '640x161 RGB PNG (two knees)',
  large: '2048x2048 16-bit PNG',
};

// The whole bilateral radiograph as a hospital exports it (12-bit DICOM), measured end to end only.
const FILM_LABELS = {
  uncompressed: '2180x2660 12-bit DICOM, uncompressed',
  j2k: '2180x2660 12-bit DICOM, JPEG 2000 lossless',
  lossless: '2180x2660 12-bit DICOM, JPEG Lossless SV1',
};

/** The films of tests/support/make_codec_fixtures.py (DCMTK and GDCM), made once into build/bench/codecs/. */
async function compressedFilms() {
  const folder = path.join(TMP, 'codecs');
  const manifestPath = path.join(folder, 'codecs.json');
  if (!existsSync(manifestPath)) {
    log('making the 12-bit DICOM films with DCMTK and GDCM');
    await run(PYTHON, [path.join(REPO_ROOT, 'tests', 'support', 'make_codec_fixtures.py'), '--out', folder]);
  }
  const { films } = JSON.parse(readFileSync(manifestPath, 'utf8'));
  const film = (syntax) => {
    const found = films.find((entry) => entry.syntax === syntax);
    if (!found) throw new Error(`no film in ${syntax} in ${manifestPath}; are the datasets there?`);
    return path.join(folder, found.file);
  };
  return {
    [FILM_LABELS.uncompressed]: film('1.2.840.10008.1.2.1'),
    [FILM_LABELS.j2k]: film('1.2.840.10008.1.2.4.90'),
    [FILM_LABELS.lossless]: film('1.2.840.10008.1.2.4.70'),
  };
}

/** A 2048x2048 16-bit grey PNG derived from a real knee (upsampled, with sensor-like noise). */
async function largeSixteenBitImage() {
  const file = path.join(TMP, 'knee-2048x2048-16bit.png');
  if (!existsSync(file)) {
    log('deriving the 2048x2048 16-bit PNG with ImageMagick');
    await run('convert', [SAMPLES.single, '-colorspace', 'Gray', '-filter', 'Lanczos', '-resize', '2048x2048!',
      '-depth', '16', '-attenuate', '0.3', '+noise', 'Gaussian',
      '-define', 'png:color-type=0', '-define', 'png:bit-depth=16', file]).catch((error) => {
      throw new Error(`${error.message}; ImageMagick's convert is needed (apt-get install imagemagick)`);
    });
  }
  return file;
}

/** `count` rows spread evenly over `rows` (in manifest order), so a small sample covers every source. */
export function spread(rows, count) {
  if (rows.length < count) throw new Error(`the split has only ${rows.length} suitable rows, ${count} are needed`);
  return Array.from({ length: count }, (_, i) => rows[Math.floor((i * rows.length) / count)]);
}

export function validationRows() {
  const [header, ...lines] = readFileSync(SPLIT, 'utf8').split(/\r?\n/).filter(Boolean);
  const columns = parseCsvLine(header);
  return lines.map((line) => Object.fromEntries(parseCsvLine(line).map((value, i) => [columns[i], value])))
    .filter((row) => row.split === 'val')
    .map((row) => ({ ...row, file: path.join(DATASETS, row.path) }));
}

// ---------------------------------------------------------------------------------------------
// Models

const REFERENCE_DIR = path.join(REPO_ROOT, 'models', 'reference');
const QUANTIZATION_MARK = `import json, sys, onnx
model = onnx.load(sys.argv[1], load_external_data=False)
print(json.dumps({p.key: p.value for p in model.metadata_props}.get("quantization", "")))`;

/**
 * The two models the fast path is judged on, as card paths: { fp32, int8 }. A shipped int8 model is
 * paired with the fp32 export it was quantised from (models/reference/NAME-fp32.onnx), described by a
 * copy of the shipped card, so both turn logits into probabilities alike; an fp32 model is paired with
 * its quantisation, made here.
 */
export async function fastPathModels(shipped, shippedSpec, calibrationImages) {
  if (!JSON.parse(await run(PYTHON, ['-c', QUANTIZATION_MARK, shipped.modelPath]))) {
    return { fp32: shippedSpec, int8: await int8Model(shipped, calibrationImages) };
  }
  const name = `${path.basename(shipped.modelPath, '.onnx')}-fp32`;
  const reference = path.join(REFERENCE_DIR, `${name}.onnx`);
  if (!existsSync(reference)) {
    throw new Error(`${path.relative(REPO_ROOT, shipped.modelPath)} computes in int8, but the fp32 export it was `
      + `quantised from (${path.relative(REPO_ROOT, reference)}) is missing`);
  }
  const { sha256, bytes } = await sha256OfFile(reference);
  const card = { ...JSON.parse(await readFile(shipped.cardPath, 'utf8')), model_file: path.relative(TMP, reference), sha256, bytes };
  const cardPath = path.join(TMP, `${name}.json`);
  await writeFile(cardPath, `${JSON.stringify(card, null, 2)}\n`);
  return { fp32: cardPath, int8: shippedSpec };
}

/** An fp32 model's static int8 quantisation, made once per source model and setting. */
async function int8Model(shipped, calibrationImages) {
  const stem = `${path.basename(shipped.modelPath, '.onnx')}-${shipped.card.sha256.slice(0, 12)}-int8-${calibrationImages}`;
  const out = path.join(TMP, `${stem}.onnx`);
  if (!existsSync(out) || !existsSync(path.join(TMP, `${stem}.json`))) {
    log(`quantising ${path.relative(REPO_ROOT, shipped.modelPath)} (${calibrationImages} calibration images)`);
    await run(PYTHON, ['tools/model/quantize_onnx.py', shipped.modelPath, '--out', out, '--card', shipped.cardPath,
      '--calibration-images', String(calibrationImages)], { env: PYTHON_ENV });
  }
  return path.join(TMP, `${stem}.json`);
}

/** An untrained 299-px export: inference speed does not depend on the weights, only on the shape. */
async function model299(shipped) {
  const out = path.join(TMP, 'untrained-299.onnx');
  const card = path.join(TMP, 'untrained-299.json');
  const shippedCard = JSON.parse(await readFile(shipped.cardPath, 'utf8'));
  const preprocess = { ...shippedCard.preprocess, input_size: 299 };
  if (existsSync(out) && existsSync(card)) {
    // The export is kept between runs; its card is the shipped one's, which may have changed since, but for the file.
    const { model_file, sha256, bytes } = JSON.parse(await readFile(card, 'utf8'));
    const current = { ...shippedCard, preprocess, model_file, sha256, bytes, untrained: true };
    await writeFile(card, `${JSON.stringify(current, null, 2)}\n`);
    return card;
  }
  log('exporting a 299-px model for comparison');
  const text = { ...shippedCard, preprocess, model_file: null, sha256: null, bytes: null, untrained: true };
  await writeFile(card, `${JSON.stringify(text, null, 2)}\n`);
  await run(PYTHON, ['tools/model/export_onnx.py', '--untrained', '--input-size', '299', '--weights', 'fp32', '--out', out,
    '--card', card], { env: PYTHON_ENV });
  return card;
}

// ---------------------------------------------------------------------------------------------
// Measurements

export async function nodeJob(job) {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'oac-bench-'));
  try {
    const jobFile = path.join(scratch, 'job.json');
    await writeFile(jobFile, JSON.stringify(job));
    return JSON.parse(await run(process.execPath, [fileURLToPath(new URL('bench_inference.mjs', import.meta.url)), jobFile]));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

async function measureInference({ models, sample, settings, quick }) {
  const timing = (id, model, sessionOptions = {}) => ({ id, model, sessionOptions });
  const common = [timing('fp32', models.fp32), timing('int8', models.int8)];
  if (models.size299) common.push(timing('fp32-299', models.size299));
  const levels = quick ? [] : ['fp32', 'int8'].flatMap((id) => OPTIMIZATION_LEVELS.filter((level) => level !== 'all')
    .map((level) => timing(`${id}@${level}`, models[id], { graphOptimizationLevel: level })));
  const jobs = [
    { runtime: 'node', threads: os.cpus().length, timings: [...common, timing('fp32-folded', models.fp32, FOLD_WEIGHTS)] },
    { runtime: 'web', threads: 1, timings: common },
    { runtime: 'web', threads: 2, timings: [...common, timing('fp32-folded', models.fp32, FOLD_WEIGHTS), ...levels] },
  ];
  const results = [];
  for (const job of jobs) {
    log(`inference: ${job.runtime}, ${job.threads} thread(s)`);
    results.push(await nodeJob({ ...job, sample, warmup: settings.warmup, repeats: settings.repeats }));
  }
  return results;
}

async function measureAccuracy({ models, settings }) {
  const rows = validationRows().filter((row) => row.kl_grade !== '1' && existsSync(row.file));
  const files = spread(rows, settings.accuracyFiles).map((row) => ({ file: row.file, positive: row.label === '1' }));
  log(`accuracy: ${files.length} validation images, fp32 vs int8 in onnxruntime-web`);
  const { accuracy } = await nodeJob({
    runtime: 'web', threads: 2,
    accuracy: { files, models: [{ id: 'fp32', model: models.fp32 }, { id: 'int8', model: models.int8 }] },
  });
  return { files: files.length, positives: files.filter((entry) => entry.positive).length, labels: 'KL>=2 vs KL0 (KL1 left out)', models: accuracy };
}

async function measureBrowser({ id, model, images, films, batchFiles, settings }) {
  const dist = path.join(TMP, `app-${id}`);
  log(`browser (${id}): building the app into ${path.relative(REPO_ROOT, dist)}`);
  const built = await buildWeb({ out: dist, model });
  const located = await locateModel(model);
  const measured = await measureApp({
    dist,
    modelFile: located.card.model_file,
    modelBytes: located.card.bytes,
    images,
    films,
    batchFiles,
    warmup: settings.warmup,
    repeats: settings.browserRepeats,
    warmStarts: settings.warmStarts,
    log: (message) => log(`${message} (${id})`),
  });
  return { id, appBytes: built.totalBytes, ...measured };
}

// ---------------------------------------------------------------------------------------------
// Summaries

function summarizeBrowser(raw, inputs) {
  const endToEnd = Object.fromEntries(Object.entries(raw.endToEnd).map(([label, runs]) => {
    const { knees } = runs[0];
    return [label, {
      file: path.basename(inputs[label]),
      knees,
      endToEndMs: summarize(runs.map((r) => r.endToEnd)),
      perKneeMs: summarize(runs.map((r) => r.endToEnd / knees)),
      inferenceMs: summarize(runs.map((r) => r.timings.inference)),
      prepareMs: summarize(runs.map((r) => r.timings.prepare)),
      viewsMs: summarize(runs.map((r) => r.timings.views)),
      workerMs: summarize(runs.map((r) => r.workerMs)),
      glueOverhead: summarize(runs.map((r) => (r.endToEnd - r.timings.inference) / r.timings.inference)),
    }];
  }));
  const preprocessing = Object.fromEntries(Object.entries(raw.preprocessing).map(([label, times]) => {
    const core = summarize(times.core);
    const javascript = summarize(times.javascript);
    return [label, { coreMs: core, javascriptMs: javascript, speedup: javascript.median / core.median }];
  }));
  const { renderer, rendererAtEnd, baseline, modelBytes } = raw.memory;
  const workerPeakMiB = renderer && baseline ? renderer.peakMiB - baseline.peakMiB : null;
  return {
    id: raw.id,
    appBytes: raw.appBytes,
    start: {
      coldMs: raw.start.coldMs,
      warmMs: summarize(raw.start.warmMs),
      coldBytes: raw.start.coldBytes,
      warmBytes: raw.start.warmBytes,
      // When each of the worker's start-up steps was done, ms since navigation: the cold start's, and the
      // median over the warm ones.
      coldStages: raw.start.coldStages,
      warmStages: Object.fromEntries(Object.keys(raw.start.warmStages[0] ?? {}).map((stage) => [stage,
        summarize(raw.start.warmStages.map((stages) => stages[stage])).median])),
      device: raw.start.device,
      userAgent: raw.start.userAgent,
    },
    endToEnd,
    preprocessing,
    memory: {
      rendererPeakMiB: renderer?.peakMiB ?? null,
      rendererPeakAtEndMiB: rendererAtEnd?.peakMiB ?? null,
      baselineRendererPeakMiB: baseline?.peakMiB ?? null,
      workerPeakMiB,
      modelMiB: modelBytes / 2 ** 20,
      workerPeakPerModelSize: workerPeakMiB === null ? null : workerPeakMiB / (modelBytes / 2 ** 20),
    },
    batch: raw.batch,
  };
}

function targetChecks(browser, fastest) {
  const app = browser.find((entry) => entry.id === fastest) ?? browser[0];
  const labels = Object.keys(app.endToEnd);
  // Results written before the whole radiograph was measured have the single crop first and the large PNG last.
  const single = app.endToEnd[IMAGE_LABELS.single] ?? app.endToEnd[labels[0]];
  const large = app.preprocessing[IMAGE_LABELS.large] ?? app.preprocessing[labels[labels.length - 1]];
  const whole = app.endToEnd[IMAGE_LABELS.whole];
  const checks = [
    ['warm end-to-end per knee (224-px PNG)', single.perKneeMs.median, `<= ${TARGETS.endToEndPerKneeMs} ms`, (v) => v <= TARGETS.endToEndPerKneeMs, 'ms'],
    ...(whole ? [['whole bilateral radiograph end to end / two single crops', whole.endToEndMs.median / (2 * single.endToEndMs.median),
      `<= ${TARGETS.wholeRadiographVsTwoCrops}x`, (v) => v <= TARGETS.wholeRadiographVsTwoCrops, 'x']] : []),
    ...[FILM_LABELS.j2k, FILM_LABELS.lossless].filter((label) => app.endToEnd[label] && app.endToEnd[FILM_LABELS.uncompressed])
      .map((label) => [`${label.replace(/^.*, /, '')} film end to end / uncompressed`,
        app.endToEnd[label].endToEndMs.median / app.endToEnd[FILM_LABELS.uncompressed].endToEndMs.median,
        `<= ${TARGETS.compressedFilmVsUncompressed}x`, (v) => v <= TARGETS.compressedFilmVsUncompressed, 'x']),
    ...labels.filter((label) => !Object.values(FILM_LABELS).includes(label)).map((label) => [`glue overhead, ${label}`, app.endToEnd[label].glueOverhead.median,
      `<= ${TARGETS.glueOverhead * 100}% of inference`, (v) => v <= TARGETS.glueOverhead, '%']),
    ['C++ WASM preprocessing speed-up over JS (2048x2048 16-bit)', large.speedup, `>= ${TARGETS.preprocessingSpeedup}x`, (v) => v >= TARGETS.preprocessingSpeedup, 'x'],
    ['cold start on loopback', app.start.coldMs, `<= ${TARGETS.coldStartMs} ms`, (v) => v <= TARGETS.coldStartMs, 'ms'],
    ['model bytes transferred (cold)', app.start.coldBytes.model, '<= 25 MB', (v) => v <= TARGETS.modelTransferBytes, 'bytes'],
    ['peak memory of loading the model and classifying / model file', app.memory.workerPeakPerModelSize, `<= ${TARGETS.memoryPerModelByte}x`, (v) => v !== null && v <= TARGETS.memoryPerModelByte, 'x'],
  ];
  return { app: app.id, checks: checks.map(([name, value, target, met, unit]) => ({ name, value, unit, target, met: met(value) })) };
}

// ---------------------------------------------------------------------------------------------
// RESULTS.md

const ms = (value) => (value === null || value === undefined ? '—' : `${value.toFixed(value < 10 ? 1 : 0)}`);
const range = (s) => (s ? `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})` : '—');
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
const formatValue = ({ value, unit }) => {
  if (value === null || value === undefined) return '—';
  if (unit === '%') return `${(value * 100).toFixed(1)}%`;
  if (unit === 'x') return `${value.toFixed(2)}x`;
  if (unit === 'bytes') return mb(value);
  return `${ms(value)} ms`;
};

function table(header, rows) {
  return [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`, ...rows.map((row) => `| ${row.join(' | ')} |`)].join('\n');
}

function renderMarkdown(results) {
  const { machine, inference, accuracy, browser, targets } = results;
  const nativeMedian = inference.find((job) => job.runtime === 'node')?.timings.find((t) => t.id === 'fp32')?.ms.median;
  const lines = [
    '# Benchmark results',
    '',
    `Written by \`tools/oac bench${results.quick ? ' --quick' : ''}\` on ${results.date}. All figures in one run on one machine: `
      + `${machine.cpu}, ${machine.cores} logical cores, ${machine.memoryGiB.toFixed(0)} GiB; Node ${machine.node}, `
      + `onnxruntime-node/web ${machine.onnxruntime}, ${machine.browser}. Times are medians (min–max) over repeated runs.`,
    '',
  ];
  if (results.underLoad) {
    lines.push(`**Taken under load** (load average ${machine.loadAverage.start.map((v) => v.toFixed(1)).join(', ')} at the start, `
      + `${machine.loadAverage.end.map((v) => v.toFixed(1)).join(', ')} at the end, on ${machine.cores} cores): other work shared the CPUs, `
      + 'so every time is pessimistic and ratios are rough.', '');
  }
  if (results.quick) lines.push('**Quick setting**: few repeats and files; this only proves the benchmark runs.', '');
  if (results.models.fp32.untrained) lines.push('The shipped model is the **untrained placeholder**, so AUC figures are meaningless; speeds are not.', '');

  lines.push('## Targets', '', `Measured on the app built with the \`${targets.app}\` model.`, '',
    table(['target', 'measured', 'goal', 'met'], targets.checks.map((check) => [check.name, formatValue(check), check.target, check.met ? 'yes' : '**no**'])), '');

  lines.push('## Models', '', table(['id', 'file', 'size', 'compute'], Object.entries(results.models).map(([id, model]) => [
    id, `\`${model.file}\``, mb(model.bytes), model.compute])), '');

  const webTwoThreads = inference.find((job) => job.runtime === 'web' && job.threads === 2);
  lines.push('## The fast path: speed next to accuracy', '',
    table(['model', 'onnxruntime-web 2 threads, ms', 'in the app\'s worker, ms', 'end to end (224-px PNG), ms', 'AUC', 'max \\|ΔP(OA)\\|'],
      ['fp32', 'int8'].map((id) => {
        const app = browser.find((entry) => entry.id === id);
        const single = app ? Object.values(app.endToEnd)[0] : null;
        const scored = accuracy.models.find((model) => model.id === id);
        return [id, range(webTwoThreads?.timings.find((t) => t.id === id)?.ms), range(single?.inferenceMs), range(single?.endToEndMs),
          scored?.auc?.toFixed(4) ?? '—', scored ? scored.maxAbsDeltaPOa.toFixed(4) : '—'];
      })), '');

  const ids = [...new Set(inference.flatMap((job) => job.timings.map((t) => t.id)))].filter((id) => !id.includes('@'));
  lines.push('## Bare inference (one knee, batch 1, logits + OOD score + CAM)', '',
    `Milliseconds per \`session.run\` through the product's engine; ratio = time / onnxruntime-node's for the fp32 model (${ms(nativeMedian)} ms).`, '',
    table(['runtime', ...ids.map((id) => `${id} ms`), ...ids.map((id) => `${id} ratio`)], [
      ...inference.map((job) => {
        const byId = Object.fromEntries(job.timings.map((t) => [t.id, t]));
        const label = job.runtime === 'node' ? `onnxruntime-node, ${job.threads} threads` : `onnxruntime-web WASM in Node, ${job.threads} thread${job.threads > 1 ? 's' : ''}`;
        return [label, ...ids.map((id) => range(byId[id]?.ms)), ...ids.map((id) => (byId[id] ? `${(byId[id].ms.median / nativeMedian).toFixed(1)}x` : '—'))];
      }),
      ...browser.map((app) => {
        const inWorker = Object.values(app.endToEnd)[0].inferenceMs;
        const cells = ids.map((id) => (id === app.id ? range(inWorker) : '—'));
        const ratios = ids.map((id) => (id === app.id ? `${(inWorker.median / nativeMedian).toFixed(1)}x` : '—'));
        return [`Chromium, app worker (${app.start.device.threads} threads), \`${app.id}\` app`, ...cells, ...ratios];
      }),
    ]), '');
  lines.push('Session creation (ms) — paid once, because the worker and the CLI keep one session for every image:', '',
    table(['runtime', ...ids], inference.map((job) => [`${job.runtime}, ${job.threads} thread${job.threads > 1 ? 's' : ''}`,
      ...ids.map((id) => ms(job.timings.find((t) => t.id === id)?.createMs))])), '');
  const levelJob = inference.find((job) => job.timings.some((t) => t.id.includes('@')));
  if (levelJob) {
    const byId = Object.fromEntries(levelJob.timings.map((t) => [t.id, t]));
    lines.push(`## Graph optimisation level (onnxruntime-web in Node, ${levelJob.threads} threads)`, '',
      table(['model', ...OPTIMIZATION_LEVELS.map((level) => `${level} ms`), 'session create at "all"'], ['fp32', 'int8'].map((id) => [id,
        ...OPTIMIZATION_LEVELS.map((level) => range(byId[level === 'all' ? id : `${id}@${level}`]?.ms)), `${ms(byId[id]?.createMs)} ms`])), '');
  }

  const compared = browser.find((app) => app.id === COMPARED);
  if (compared) {
    const perKnee = (app) => Object.values(app.endToEnd)[0].endToEndMs.median;
    const int8App = browser.find((app) => app.id === 'int8');
    const ratio = perKnee(int8App) / perKnee(compared);
    lines.push('## Against the model compared (`--compare`, same run)', '',
      table(['app', 'model', 'warm end to end per knee (224-px PNG), ms', 'in the app\'s worker, ms'],
        [int8App, compared].map((app) => [`\`${app.id}\``, `\`${results.models[app.id].file}\``,
          range(Object.values(app.endToEnd)[0].endToEndMs), range(Object.values(app.endToEnd)[0].inferenceMs)])), '',
      `int8 / compared: ${ratio.toFixed(3)}x (goal <= ${COMPARED_SLOWDOWN.toFixed(2)}x: ${ratio <= COMPARED_SLOWDOWN ? 'met' : '**missed**'}).`, '');
  }

  lines.push('## Accuracy of the int8 fast path (onnxruntime-web)', '',
    `${accuracy.files} validation images from models/data/split.csv (${accuracy.positives} positive; ${accuracy.labels}); `
      + 'P(OA) per image (its highest knee), delta against the fp32 model.', '',
    table(['model', 'AUC', 'max \\|ΔP(OA)\\|', 'mean \\|ΔP(OA)\\|', 'images/s (batch 16, 2 threads)'], accuracy.models.map((model) => [
      model.id, model.auc?.toFixed(4) ?? '—', model.maxAbsDeltaPOa.toFixed(4), model.meanAbsDeltaPOa.toFixed(4), model.imagesPerSecond.toFixed(1)])), '');

  for (const app of browser) {
    lines.push(`## The app in headless Chromium: \`${app.id}\` model`, '',
      `Built app ${mb(app.appBytes)}; worker: ${app.start.device.threads} ONNX Runtime threads, cross-origin isolated ${app.start.device.isolated}, SIMD ${app.start.device.simd}.`, '',
      table(['start', 'until ready', 'bytes served', 'model bytes'], [
        ['cold (empty profile)', `${ms(app.start.coldMs)} ms`, mb(app.start.coldBytes.total), mb(app.start.coldBytes.model)],
        [`warm (reload, ${app.start.warmMs.n}x)`, `${range(app.start.warmMs)} ms`, mb(app.start.warmBytes.total), mb(app.start.warmBytes.model)],
      ]), '',
      'Where a start spends its time: when each of the worker\'s steps was done, ms since navigation (ONNX Runtime '
        + 'started, the model\'s bytes downloaded or read from the device and verified, and the image core started, '
        + 'all side by side; then the model\'s session).', '',
      table(['start', 'worker begins', 'ONNX Runtime started', 'model card', 'image core', 'model bytes', 'model session (ready)'],
        [['cold', app.start.coldStages], ['warm (median)', app.start.warmStages]].map(([label, stages]) => [label,
          ...['start', 'runtime', 'card', 'core', 'model', 'session'].map((stage) => ms(stages?.[stage]))])), '',
      'End to end: from a dropped File to the verdict and heatmap drawn; the worker\'s breakdown is from the same runs. '
        + 'Glue overhead = (end-to-end − inference) / inference.', '',
      table(['image', 'knees', 'end-to-end ms', 'per knee ms', 'inference ms', 'prepare ms', 'views ms', 'glue overhead'],
        Object.entries(app.endToEnd).map(([label, e]) => [label, e.knees, range(e.endToEndMs), range(e.perKneeMs), range(e.inferenceMs),
          range(e.prepareMs), range(e.viewsMs), `${(e.glueOverhead.median * 100).toFixed(0)}%`])), '',
      'Preprocessing in the page, file to tensor: the C++ core in WASM (decode, window, crop, antialiased resize) against '
        + 'createImageBitmap + canvas drawImage/getImageData + a JavaScript normalisation loop.', '',
      table(['image', 'C++ core ms', 'JavaScript ms', 'core speed-up'], Object.entries(app.preprocessing).map(([label, p]) => [
        label, range(p.coreMs), range(p.javascriptMs), `${p.speedup.toFixed(2)}x`])), '',
      table(['memory', 'MiB'], [
        ['highest renderer peak after the starts and end-to-end runs (page + worker + ORT threads; the cold-start page\'s '
          + 'renderer may be another process than the reloaded one)', ms(app.memory.rendererPeakMiB)],
        ['highest renderer peak at the end (also the page\'s own preprocessing comparison and the batch)', ms(app.memory.rendererPeakAtEndMiB)],
        ['renderer of the app with the model blocked (baseline: page, worker, core)', ms(app.memory.baselineRendererPeakMiB)],
        ['attributable to loading the model and classifying (difference)', ms(app.memory.workerPeakMiB)],
        ['model file', app.memory.modelMiB.toFixed(1)],
      ]), '',
      `Batch: ${app.batch.files} files through the page's file input in ${app.batch.seconds.toFixed(1)} s = `
        + `**${app.batch.imagesPerSecond.toFixed(1)} images/s**.`, '');
  }
  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------

async function describeModel(cardOrOnnx, compute, { quantised = false } = {}) {
  const located = await locateModel(cardOrOnnx);
  // The integer format, where the card states it (models/quantization-formats.md compares them).
  const format = quantised ? located.card.compute?.integer_format : null;
  return {
    file: path.relative(REPO_ROOT, located.modelPath),
    bytes: located.card.bytes,
    untrained: located.untrained,
    compute: format ? `${compute}; ${format} (models/quantization-formats.md)` : compute,
  };
}

async function writeResults(results, out) {
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(path.join(out, 'RESULTS.md'), renderMarkdown(results));
  log(`wrote ${path.join(out, 'results.json')} and RESULTS.md`);
}

async function main(options) {
  if (options.render) {
    const results = JSON.parse(await readFile(options.render, 'utf8'));
    results.targets = targetChecks(results.browser, results.targets.app);
    await writeResults(results, path.dirname(options.render));
    return;
  }
  const settings = SETTINGS[options.quick ? 'quick' : 'full'];
  const loadAtStart = os.loadavg();
  await mkdir(TMP, { recursive: true });

  const shipped = await locateModel(options.model);
  const models = {
    // Its .onnx path finds the same card again (the one beside it, else the repository's).
    ...await fastPathModels(shipped, options.model || shipped.modelPath, settings.calibrationImages),
    size299: options.quick ? null : await model299(shipped),
  };

  if (!existsSync(WHOLE_RADIOGRAPH)) throw new Error(`the whole radiograph ${WHOLE_RADIOGRAPH} is missing (set OAC_DATASETS)`);
  const images = {
    [IMAGE_LABELS.single]: SAMPLES.single,
    [IMAGE_LABELS.whole]: WHOLE_RADIOGRAPH,
    [IMAGE_LABELS.bilateral]: SAMPLES.bilateral,
    [IMAGE_LABELS.large]: await largeSixteenBitImage(),
  };
  const films = await compressedFilms();
  const batchFiles = spread(validationRows().filter((row) => existsSync(row.file)), settings.batchFiles).map((row) => row.file);

  const inference = await measureInference({ models, sample: SAMPLES.single, settings, quick: options.quick });
  const accuracy = await measureAccuracy({ models, settings });
  const browserRaw = [];
  for (const id of ['fp32', 'int8']) {
    browserRaw.push(await measureBrowser({ id, model: models[id], images, films, batchFiles, settings }));
  }
  if (options.compare) {
    browserRaw.push(await measureBrowser({ id: COMPARED, model: options.compare, images, films, batchFiles, settings }));
  }
  const browser = browserRaw.map((raw) => summarizeBrowser(raw, { ...images, ...films }));
  const fastest = browser.filter((app) => app.id !== COMPARED).reduce((best, app) => (Object.values(app.endToEnd)[0].endToEndMs.median
    < Object.values(best.endToEnd)[0].endToEndMs.median ? app : best)).id;

  const loadAtEnd = os.loadavg();
  const cores = os.cpus().length;
  const packageVersion = (name) => JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
  const results = {
    date: new Date().toISOString(),
    quick: options.quick,
    underLoad: Math.max(loadAtStart[0], loadAtEnd[0]) > cores * 0.5 + 1,
    machine: {
      cpu: os.cpus()[0]?.model ?? 'unknown CPU',
      cores,
      memoryGiB: os.totalmem() / 2 ** 30,
      node: process.version,
      onnxruntime: packageVersion('onnxruntime-web'),
      browser: browser[0]?.start.userAgent.match(/(Headless)?Chrome\/[\d.]+/)?.[0] ?? 'Chromium',
      loadAverage: { start: loadAtStart, end: loadAtEnd },
    },
    settings,
    models: {
      fp32: await describeModel(models.fp32, 'fp32 (weights stored in one byte, expanded when loaded)'),
      int8: await describeModel(models.int8, 'int8 QDQ (QLinearConv), static calibration', { quantised: true }),
      ...(models.size299 ? { 'fp32-299': await describeModel(models.size299, 'fp32, 299 px, untrained (speed only)') } : {}),
      ...(options.compare ? { [COMPARED]: await describeModel(options.compare, 'the model compared (--compare)', { quantised: true }) } : {}),
    },
    inference,
    accuracy,
    browser,
    targets: targetChecks(browser, fastest),
  };
  await writeResults(results, options.out);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = commandLineOrExit('bench', USAGE, { options: OPTIONS }, ({ values }) => ({
    quick: values.quick,
    out: path.resolve(values.out),
    model: values.model,
    render: values.render && path.resolve(values.render),
    compare: values.compare && path.resolve(values.compare),
  }));
  main(options).catch((error) => {
    process.stderr.write(`bench: ${error.message}\n`);
    process.exitCode = 1;
  });
}
