// The OA logit and the argmax KL grade of every input knee under each of several ONNX models, with the product's session options,
// for tools/model/quantization_sensitivity.py; optionally the median time of one knee, the models taking turns.
//
//   node tools/model/oa_logits.mjs --inputs INPUTS.npy --out OUT.json [--backend node|web] [--repeats R] MODEL...
//       INPUTS.npy: float32 [N,3,S,S] fed to the model's input `image`, in batches of 16
//       -> OUT.json: {"logits": {MODEL: [N numbers]}, "kl_grades": {MODEL: [N grades]},
//                     "ms_per_knee": {MODEL: median ms} (with --repeats)}
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { UsageError, commandLineOrExit, wholeNumber } from '../lib/command_line.mjs';
import { readNpyFloat32 } from '../lib/npy.mjs';

const require = createRequire(import.meta.url);
const BATCH = 16;
const USAGE = 'usage: node tools/model/oa_logits.mjs --inputs INPUTS.npy --out OUT.json [--backend node|web] [--repeats R] MODEL...\n';

async function runtime(backend) {
  if (backend === 'node') return { ort: require('onnxruntime-node'), provider: 'cpu' };
  const ort = await import('onnxruntime-web');
  ort.env.wasm.wasmPaths = path.dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm')) + '/';
  ort.env.wasm.numThreads = 1;
  return { ort, provider: 'wasm' };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[sorted.length >> 1];
}

async function main({ inputs, out, backend, repeats, models }) {
  const { shape, data } = readNpyFloat32(inputs);
  const perKnee = shape[1] * shape[2] * shape[3];
  const { ort, provider } = await runtime(backend);
  // x64quantprecision as the product sets it (web/engine.js), one thread so the figures compare across backends
  const options = { executionProviders: [provider], intraOpNumThreads: 1, graphOptimizationLevel: 'all',
    extra: { session: { x64quantprecision: '1' } } };
  const sessions = [];
  for (const model of models) sessions.push(await ort.InferenceSession.create(fs.readFileSync(model), options));
  const logits = {};
  const klGrades = {};
  for (const [i, session] of sessions.entries()) {
    const values = [];
    const grades = [];
    for (let start = 0; start < shape[0]; start += BATCH) {
      const count = Math.min(BATCH, shape[0] - start);
      const batch = new ort.Tensor('float32', data.subarray(start * perKnee, (start + count) * perKnee),
        [count, ...shape.slice(1)]);
      const outputs = await session.run({ image: batch });
      values.push(...outputs.oa_logit.data);
      const grading = outputs.kl_logits.data;
      const classes = grading.length / count;
      for (let k = 0; k < count; k += 1) {
        const row = Array.from(grading.subarray(k * classes, (k + 1) * classes));
        grades.push(row.indexOf(Math.max(...row)));
      }
    }
    logits[models[i]] = values;
    klGrades[models[i]] = grades;
  }
  const timings = models.map(() => []);
  const knee = new ort.Tensor('float32', data.slice(0, perKnee), [1, ...shape.slice(1)]);
  for (let round = 0; round <= repeats; round += 1) {
    for (const [i, session] of sessions.entries()) {
      const started = performance.now();
      await session.run({ image: knee });
      if (round > 0) timings[i].push(performance.now() - started);  // round 0 warms up
    }
  }
  const result = { logits, kl_grades: klGrades };
  if (repeats > 0) result.ms_per_knee = Object.fromEntries(models.map((model, i) => [model, median(timings[i])]));
  fs.writeFileSync(out, JSON.stringify(result));
}

await main(commandLineOrExit('oa_logits', USAGE, {
  options: { inputs: { type: 'string' }, out: { type: 'string' }, backend: { type: 'string', default: 'node' },
    repeats: { type: 'string', default: '0' } },
  positionals: [1, Infinity],
}, ({ values, positionals }) => {
  if (!values.inputs || !values.out) throw new UsageError('--inputs and --out are required');
  if (!['node', 'web'].includes(values.backend)) throw new UsageError(`--backend must be node or web, not ${values.backend}`);
  return { inputs: values.inputs, out: values.out, backend: values.backend,
    repeats: wholeNumber('--repeats', values.repeats, { least: 0 }), models: positionals };
}));
