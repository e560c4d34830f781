// Calibration pass for tools/model/quantize_onnx.py: runs an ONNX model whose graph outputs are the activation
// tensors to quantise (the quantiser adds them) on calibration inputs with onnxruntime-node, and writes
// the range each tensor takes. Only the ranges leave this process, never the (large) activations.
//
//   node tools/model/activation_ranges.mjs MODEL.onnx INPUTS.npy OUT.json [--batch N]
//       INPUTS.npy: float32 [N,3,S,S] fed to the model's input `image`
//       OUT.json:   {"<tensor>": {"min", "max", "high", "low"}, ...} where min/max are over every input and
//                   high/low are the upper/lower PERCENTILE of each batch, averaged over the batches

import fs from 'node:fs';
import ort from 'onnxruntime-node';
import { commandLineOrExit, wholeNumber } from '../lib/command_line.mjs';
import { readNpyFloat32 } from '../lib/npy.mjs';

const PERCENTILE = 99.99;
const HISTOGRAM_BINS = 4096;
const DEFAULT_BATCH = 8;

/** The value below which `fraction` of `values` lie, to within one histogram bin between min and max. */
function quantile(values, min, max, fraction) {
  if (max <= min) return max;
  const bins = new Float64Array(HISTOGRAM_BINS);
  const perBin = HISTOGRAM_BINS / (max - min);
  for (let i = 0; i < values.length; i += 1) {
    bins[Math.min(HISTOGRAM_BINS - 1, Math.floor((values[i] - min) * perBin))] += 1;
  }
  const target = fraction * values.length;
  let seen = 0;
  for (let bin = 0; bin < HISTOGRAM_BINS; bin += 1) {
    seen += bins[bin];
    if (seen >= target) return min + (bin + 1) / perBin;
  }
  return max;
}

function extremes(values) {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i += 1) {
    const value = values[i];
    if (value < min) min = value;
    if (value > max) max = value;
  }
  return { min, max };
}

async function measureRanges(modelFile, inputsFile, batch) {
  const { shape, data } = readNpyFloat32(inputsFile);
  const [count, ...itemShape] = shape;
  const itemLength = itemShape.reduce((a, b) => a * b, 1);
  const session = await ort.InferenceSession.create(fs.readFileSync(modelFile), { graphOptimizationLevel: 'all' });
  const ranges = Object.fromEntries(session.outputNames.map((name) => [name, { min: Infinity, max: -Infinity, high: 0, low: 0 }]));
  let batches = 0;
  for (let start = 0; start < count; start += batch) {
    const size = Math.min(batch, count - start);
    const input = new ort.Tensor('float32', data.subarray(start * itemLength, (start + size) * itemLength), [size, ...itemShape]);
    const outputs = await session.run({ [session.inputNames[0]]: input });
    for (const name of session.outputNames) {
      const values = outputs[name].data;
      const { min, max } = extremes(values);
      const range = ranges[name];
      range.min = Math.min(range.min, min);
      range.max = Math.max(range.max, max);
      range.high += quantile(values, min, max, PERCENTILE / 100);
      range.low += quantile(values, min, max, 1 - PERCENTILE / 100);
    }
    batches += 1;
  }
  for (const range of Object.values(ranges)) {
    range.high /= batches;
    range.low /= batches;
  }
  return ranges;
}

const USAGE = 'usage: node tools/model/activation_ranges.mjs MODEL.onnx INPUTS.npy OUT.json [--batch N]\n';
const { batch, positionals: [modelFile, inputsFile, outFile] } = commandLineOrExit('activation_ranges', USAGE,
  { options: { batch: { type: 'string', default: String(DEFAULT_BATCH) } }, positionals: [3, 3] },
  ({ values, positionals }) => ({ batch: wholeNumber('--batch', values.batch), positionals }));
try {
  fs.writeFileSync(outFile, JSON.stringify(await measureRanges(modelFile, inputsFile, batch)));
} catch (error) {
  console.error(`activation_ranges: ${error.message}`);
  process.exit(1);
}
