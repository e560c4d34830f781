// nsfwjs's InceptionV3 (MIT, Infinite Red / GantMan; Keras ImageNet InceptionV3 fine-tuned) on the
// Node side: unpacks the model nsfwjs bundles as JavaScript, and runs it with TensorFlow.js (pure-JS CPU
// backend, no network) as the reference that tools/model/convert_nsfwjs.py's PyTorch weights are checked against.
//
//   node tools/model/nsfwjs_reference.mjs extract OUT_DIR
//       -> OUT_DIR/model.json (Keras topology + weights manifest), OUT_DIR/weights.bin (the shards, concatenated)
//   node tools/model/nsfwjs_reference.mjs run MODEL_DIR INPUTS.npy OUT_DIR
//       INPUTS.npy: float32 [N,3,299,299] (NCHW, as PyTorch sees it)
//       -> OUT_DIR/features.npy (float32 [N,2048], the global-pooled mixed10 features)
//          OUT_DIR/probabilities.npy (float32 [N,5], nsfwjs's class probabilities)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { UsageError, commandLineOrExit } from '../lib/command_line.mjs';
import { readNpyFloat32, writeNpyFloat32 } from '../lib/npy.mjs';

const require = createRequire(import.meta.url);
// nsfwjs's "exports" hide package.json; its CommonJS entry is <package>/dist/cjs/index.js.
const NSFWJS_DIR = path.resolve(path.dirname(require.resolve('nsfwjs')), '..', '..');
const POOLED_FEATURES_LAYER = 'flatten_1';

function extract(outDir) {
  const bundleDir = path.join(NSFWJS_DIR, 'dist', 'models', 'inception_v3');
  // The bundles are UMD wrappers: model.min.js exports {modelTopology, weightsManifest},
  // each group1-shardKofM.min.js exports one shard as a base64 string.
  const model = require(path.join(bundleDir, 'model.min.js'));
  const shards = model.weightsManifest.flatMap((group) => group.paths).map((shard) => {
    const base64 = require(path.join(bundleDir, `${shard}.min.js`));
    if (typeof base64 !== 'string') throw new Error(`${shard}.min.js does not export a base64 string`);
    return Buffer.from(base64, 'base64');
  });
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'model.json'), JSON.stringify(model));
  fs.writeFileSync(path.join(outDir, 'weights.bin'), Buffer.concat(shards));
  const version = JSON.parse(fs.readFileSync(path.join(NSFWJS_DIR, 'package.json'), 'utf8')).version;
  console.log(`extracted nsfwjs@${version} inception_v3: ${shards.length} shards, ` +
    `${shards.reduce((n, s) => n + s.length, 0)} bytes -> ${outDir}`);
}

async function run(modelDir, inputsFile, outDir) {
  const { shape, data } = readNpyFloat32(inputsFile);
  if (shape.length !== 4 || shape[1] !== 3) throw new Error(`inputs must be [N,3,H,W], got [${shape}]`);
  const tf = await import('@tensorflow/tfjs');
  await tf.setBackend('cpu');
  const { modelTopology, weightsManifest } = JSON.parse(fs.readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const weights = fs.readFileSync(path.join(modelDir, 'weights.bin'));
  const weightData = weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length);
  const handler = { load: async () => ({ modelTopology, weightSpecs: weightsManifest.flatMap((g) => g.weights), weightData }) };
  const classifier = await tf.loadLayersModel(handler);
  const model = tf.model({
    inputs: classifier.inputs,
    outputs: [classifier.getLayer(POOLED_FEATURES_LAYER).output, classifier.outputs[0]],
  });

  fs.mkdirSync(outDir, { recursive: true });
  const features = [];
  const probabilities = [];
  // One image at a time keeps the pure-JS backend's peak memory small.
  for (let n = 0; n < shape[0]; n++) {
    const imageSize = shape[1] * shape[2] * shape[3];
    const [pooled, probs] = tf.tidy(() => {
      const nchw = tf.tensor4d(data.subarray(n * imageSize, (n + 1) * imageSize), [1, ...shape.slice(1)]);
      return model.predict(nchw.transpose([0, 2, 3, 1]));
    });
    features.push(...(await pooled.data()));
    probabilities.push(...(await probs.data()));
    tf.dispose([pooled, probs]);
  }
  writeNpyFloat32(path.join(outDir, 'features.npy'), [shape[0], features.length / shape[0]], features);
  writeNpyFloat32(path.join(outDir, 'probabilities.npy'), [shape[0], probabilities.length / shape[0]], probabilities);
  console.log(`ran nsfwjs inception_v3 (tfjs ${tf.version.tfjs}, ${tf.getBackend()} backend) on ${shape[0]} inputs -> ${outDir}`);
}

const USAGE = 'usage: node tools/model/nsfwjs_reference.mjs extract OUT_DIR | run MODEL_DIR INPUTS.npy OUT_DIR\n';
const COMMANDS = new Map([['extract', { action: extract, argumentCount: 1 }], ['run', { action: run, argumentCount: 3 }]]);
const [command, args] = commandLineOrExit('nsfwjs_reference', USAGE, { positionals: [2, 4] }, ({ positionals: [name, ...rest] }) => {
  const known = COMMANDS.get(name);
  if (!known) throw new UsageError(`unknown command "${name}"`);
  if (rest.length !== known.argumentCount) throw new UsageError(`${name} takes ${known.argumentCount} arguments, not ${rest.length}`);
  return [known.action, rest];
});
try {
  await command(...args);
} catch (error) {
  console.error(`nsfwjs_reference: ${error.message}`);
  process.exit(1);
}
