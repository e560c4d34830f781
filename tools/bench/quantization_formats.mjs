#!/usr/bin/env node
// `tools/oac quant-formats`: the integer formats the shipped network could be quantised to, measured side by
// side so the shipped one is chosen on numbers (models/quantization-formats.md):
//   - accuracy against the fp32 reference on the validation split (mean and max |delta P(OA)|, KL grade
//     agreement, AUC KL>=2 vs KL0, KL accuracy), through the product's engine and onnxruntime-node;
//   - whether the format computes the same on a CPU without VNNI: a few knees and the self-test probe run by
//     onnxruntime-node under `qemu-x86_64 -cpu Haswell` (AVX2, no VNNI) against this machine's run, with
//     onnxruntime's default session options, so the format alone is judged;
//   - speed per knee in onnxruntime-web (WASM, 2 threads, as the page) and onnxruntime-node (2 threads).
// Each format is quantised from models/reference/ by tools/model/quantize_onnx.py --format, into build/bench/.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { integerKernelFeatures, loadCoreModule } from '../app/classify.mjs';
import { locateModel } from '../lib/artifacts.mjs';
import { commandLineOrExit, wholeNumber } from '../lib/command_line.mjs';
import { SAMPLES } from '../lib/datasets.mjs';
import { readNpyFloat32, writeNpyFloat32 } from '../lib/npy.mjs';
import { REPO_ROOT } from '../lib/paths.mjs';
import { PYTHON, PYTHON_ENV, fastPathModels, nodeJob, run, spread, validationRows } from './bench.mjs';

const FORMATS = ['u8s8', 'u8u8', 'u8s7', 's8s8'];
const WORK_DIR = path.join(REPO_ROOT, 'build', 'bench', 'formats');
const DEFAULT_OUT = path.join(REPO_ROOT, 'models', 'quantization-formats');
const ONNX_RUN = path.join(REPO_ROOT, 'tools', 'lib', 'onnx_run.mjs');
const WITHOUT_VNNI = ['qemu-x86_64', '-cpu', 'Haswell'];
const SAME_ON_EVERY_CPU = 1e-3;  // |delta logit| that float summation order alone can cause; a saturating kernel moves logits by ~1

const USAGE = `usage: tools/oac quant-formats [--files N] [--knees K] [--repeats R] [--out STEM]

Quantises the shipped network's fp32 reference to each integer format (${FORMATS.join(', ')}) and measures
accuracy against fp32 on N validation images (default all), whether K knees and the self-test probe give the
same outputs on a CPU without VNNI (qemu, default 3), and speed per knee (R timed runs, default 10).
Writes STEM.json and STEM.md (default models/quantization-formats).
`;

const log = (message) => process.stderr.write(`quant-formats: ${message}\n`);

async function quantised(fp32Card, format) {
  const out = path.join(WORK_DIR, `${format}.onnx`);
  const card = path.join(WORK_DIR, `${format}.json`);
  if (!existsSync(out) || !existsSync(card)) {
    log(`quantising to ${format}`);
    const { modelPath } = await locateModel(fp32Card);
    await run(PYTHON, ['tools/model/quantize_onnx.py', modelPath, '--out', out, '--card', fp32Card, '--format', format,
      '--first-conv-range', '1'],
      { env: PYTHON_ENV });
  }
  return card;
}

/** Runs a command, keeping its output (qemu warns about every CPU feature it leaves out) unless it fails. */
function spawnQuietly(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr = [];
    child.stderr.on('data', (chunk) => stderr.push(chunk));
    child.on('error', (error) => reject(new Error(`${command} could not start: ${error.message}`)));
    child.on('close', (code) => (code === 0 ? resolve()
      : reject(new Error(`${command} ${args.join(' ')} failed (exit ${code}): ${Buffer.concat(stderr).toString().trim()}`))));
  });
}

/**
 * A copy of a format's card without its self-test, so every format is measured on this CPU, also one whose
 * outputs here differ from its expectation (which `selfTest` then records).
 */
async function uncheckedCard(card) {
  const { self_test: selfTest, ...rest } = JSON.parse(await readFile(card, 'utf8'));
  const copy = card.replace(/\.json$/, '-unchecked.json');
  await writeFile(copy, `${JSON.stringify(rest, null, 2)}\n`);
  return { copy, selfTest };
}

/** float32 [K+1,3,S,S]: the self-test probe, then the first knee of K validation images, made by the WASM core. */
async function probeAndKnees(cardPath, files, inputsFile) {
  const coreModule = await loadCoreModule();
  const core = new coreModule.Core(await readFile(cardPath, 'utf8'));
  const tensors = [core.selfTestTensor().slice()];
  for (const file of files) {
    const prepared = core.prepare(new Uint8Array(await readFile(file)));
    if (!prepared.ok) throw new Error(`${file}: ${prepared.error}`);
    tensors.push(core.tensor(0).slice());
  }
  core.delete();
  const size = Math.round(Math.sqrt(tensors[0].length / 3));
  writeNpyFloat32(inputsFile, [tensors.length, 3, size, size], tensors.flatMap((tensor) => Array.from(tensor)));
}

/** Largest |delta| of the logits between this CPU and one without VNNI, per format, on the probe and the knees. */
async function kernelPathCheck(cards, knees) {
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'oac-formats-'));
  try {
    const files = spread(validationRows().filter((row) => existsSync(row.file)), knees).map((row) => row.file);
    const inputs = path.join(scratch, 'inputs.npy');
    await probeAndKnees(Object.values(cards)[0], files, inputs);
    const results = {};
    for (const [format, card] of Object.entries(cards)) {
      const { modelPath } = await locateModel(card);
      log(`${format}: ${knees} knees and the probe on this CPU and under ${WITHOUT_VNNI.join(' ')}`);
      const here = path.join(scratch, `${format}-here`);
      const haswell = path.join(scratch, `${format}-haswell`);
      await spawnQuietly(process.execPath, [ONNX_RUN, 'node', modelPath, inputs, here]);
      await spawnQuietly(WITHOUT_VNNI[0], [...WITHOUT_VNNI.slice(1), process.execPath, ONNX_RUN, 'node', modelPath, inputs, haswell]);
      let largest = 0;
      for (const output of ['oa_logit', 'kl_logits']) {
        const a = readNpyFloat32(path.join(here, `${output}.npy`)).data;
        const b = readNpyFloat32(path.join(haswell, `${output}.npy`)).data;
        a.forEach((value, i) => { largest = Math.max(largest, Math.abs(value - b[i])); });
      }
      results[format] = { knees, maxAbsDeltaLogit: largest, sameOnEveryCpu: largest <= SAME_ON_EVERY_CPU };
    }
    return results;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** The product's self-test (tools/oac classify --self-test, with the product's session options) on this CPU
 * and under qemu without VNNI: 'passes', 'fails' or 'none' (no expectation in the card). */
async function selfTests(cards) {
  const results = {};
  const classify = path.join(REPO_ROOT, 'tools', 'app', 'classify.mjs');
  const outcome = (command, args) => spawnQuietly(command, args).then(() => 'passes', (error) => {
    if (/no self_test|another model file/.test(error.message)) return 'none';
    if (/cannot run the model correctly/.test(error.message)) return 'fails';
    throw error;
  });
  for (const [format, card] of Object.entries(cards)) {
    log(`${format}: the self-test on this CPU and without VNNI`);
    const args = [classify, '--self-test', '--model', card];
    results[format] = {
      here: await outcome(process.execPath, args),
      withoutVnni: await outcome(WITHOUT_VNNI[0], [...WITHOUT_VNNI.slice(1), process.execPath, ...args]),
    };
  }
  return results;
}

async function accuracy(fp32Card, cards, fileCount) {
  const rows = validationRows().filter((row) => existsSync(row.file) && row.label !== '');
  const chosen = fileCount ? spread(rows, fileCount) : rows;
  const files = chosen.map((row) => ({
    file: row.file,
    positive: row.kl_grade === '1' ? null : row.label === '1',
    klGrade: row.kl_grade === '' ? null : Number(row.kl_grade),
  }));
  log(`accuracy: ${files.length} validation images, fp32 and ${Object.keys(cards).join(', ')} in onnxruntime-node`);
  const models = [{ id: 'fp32', model: fp32Card }, ...Object.entries(cards).map(([id, model]) => ({ id, model }))];
  const { accuracy: measured } = await nodeJob({ runtime: 'node', threads: 2, accuracy: { files, models } });
  return measured;
}

async function speed(cards, repeats) {
  const timings = Object.entries(cards).map(([id, model]) => ({ id, model }));
  const results = {};
  for (const runtime of ['web', 'node']) {
    log(`speed: onnxruntime-${runtime}, 2 threads`);
    const measured = await nodeJob({ runtime, threads: 2, sample: SAMPLES.single, warmup: 3, repeats, timings });
    results[runtime] = Object.fromEntries(measured.timings.map((timing) => [timing.id, timing.ms]));
  }
  return results;
}

const fixed = (value, digits) => (value === null || value === undefined ? '—' : value.toFixed(digits));

function renderMarkdown(results) {
  const rows = results.formats.map((format) => {
    const measured = results.accuracy.find((entry) => entry.id === format);
    const path_ = results.kernelPaths[format];
    return `| ${format} | ${results.descriptions[format]} | ${fixed(measured.meanAbsDeltaPOa, 4)} | ${fixed(measured.maxAbsDeltaPOa, 4)} `
      + `| ${fixed(measured.klGradeAgreement, 3)} | ${fixed(measured.auc, 4)} | ${fixed(measured.klAccuracy, 3)} `
      + `| ${fixed(path_.maxAbsDeltaLogit, 4)} (${path_.sameOnEveryCpu ? 'same' : '**differs**'}) `
      + `| ${results.selfTests[format].here} / ${results.selfTests[format].withoutVnni} `
      + `| ${fixed(results.speed.web[format].median, 0)} | ${fixed(results.speed.node[format].median, 0)} |`;
  });
  const fp32 = results.accuracy.find((entry) => entry.id === 'fp32');
  const load = results.machine.loadAverage;
  return [
    '# Integer formats for the shipped network',
    '',
    `Written by \`tools/oac quant-formats\` on ${results.date}: ${results.machine.cpu}, ${results.machine.cores} logical cores, `
      + `CPU features ${results.machine.cpuFeatures.join(' ') || 'none of interest'}; onnxruntime-node/web ${results.machine.onnxruntime}; `
      + `load average ${load.start.map((v) => v.toFixed(1)).join(', ')} at the start, ${load.end.map((v) => v.toFixed(1)).join(', ')} at the end.`,
    '',
    `Accuracy: ${fp32.files} validation images through the product's engine in onnxruntime-node on this CPU; `
      + `differences are from the fp32 reference (AUC ${fixed(fp32.auc, 4)}, KL accuracy ${fixed(fp32.klAccuracy, 3)}). `
      + `A CPU without VNNI: ${results.knees} knees and the self-test probe under \`${WITHOUT_VNNI.join(' ')}\`, largest |Δ logit| `
      + `against this CPU with onnxruntime's default session options (same: ≤ ${SAME_ON_EVERY_CPU}); the self-test with the `
      + `product's session options (\`tools/oac classify --self-test\`, its expectation measured in onnxruntime-web). Speed: `
      + `median ms per knee (batch of one knee and its mirror image, CAM included), 2 threads.`,
    '',
    '| format | what | mean \\|ΔP(OA)\\| | max \\|ΔP(OA)\\| | KL grade agreement | AUC KL≥2 vs KL0 | KL accuracy | without VNNI | self-test here / without VNNI | web ms | node ms |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}

async function main({ files, knees, repeats, out }) {
  const loadAtStart = os.loadavg();
  await mkdir(WORK_DIR, { recursive: true });
  const shipped = await locateModel('');
  const { fp32 } = await fastPathModels(shipped, shipped.modelPath, 64);
  const cards = {};
  const unchecked = {};
  for (const format of FORMATS) {
    cards[format] = await quantised(fp32, format);
    unchecked[format] = (await uncheckedCard(cards[format])).copy;
  }
  const descriptions = JSON.parse(await run(PYTHON, ['-c',
    'import json; from model.quantize_onnx import FORMATS; print(json.dumps({k: v.description for k, v in FORMATS.items()}))'],
  { env: PYTHON_ENV }));
  const results = {
    date: new Date().toISOString(),
    formats: FORMATS,
    descriptions,
    knees,
    kernelPaths: await kernelPathCheck(unchecked, knees),
    selfTests: await selfTests(cards),
    accuracy: await accuracy(fp32, unchecked, files),
    speed: await speed(unchecked, repeats),
  };
  results.machine = {
    cpu: os.cpus()[0]?.model ?? 'unknown CPU',
    cores: os.cpus().length,
    cpuFeatures: integerKernelFeatures().features,
    onnxruntime: JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', 'onnxruntime-web', 'package.json'), 'utf8')).version,
    loadAverage: { start: loadAtStart, end: os.loadavg() },
  };
  await writeFile(`${out}.json`, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(`${out}.md`, renderMarkdown(results));
  log(`wrote ${path.relative(REPO_ROOT, out)}.json and .md`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = commandLineOrExit('quant-formats', USAGE, {
    options: {
      files: { type: 'string', default: '0' },
      knees: { type: 'string', default: '3' },
      repeats: { type: 'string', default: '10' },
      out: { type: 'string', default: DEFAULT_OUT },
    },
  }, ({ values }) => ({
    files: wholeNumber('--files', values.files, { least: 0 }),
    knees: wholeNumber('--knees', values.knees),
    repeats: wholeNumber('--repeats', values.repeats),
    out: path.resolve(values.out),
  }));
  main(options).catch((error) => {
    process.stderr.write(`quant-formats: ${error.message}\n`);
    process.exitCode = 1;
  });
}
