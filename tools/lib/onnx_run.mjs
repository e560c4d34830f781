// Runs an ONNX model with ONNX Runtime in Node, on either runtime the product uses:
//   node  onnxruntime-node (native CPU), as the CLI does
//   web   onnxruntime-web's WASM backend (one thread, .wasm from node_modules), as the browser does
//
//   node tools/lib/onnx_run.mjs node|web MODEL.onnx INPUTS.npy OUT_DIR
//       INPUTS.npy: float32 [N,3,S,S] fed to the model's input `image`
//       -> OUT_DIR/<output name>.npy for every model output (float32)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { commandLineOrExit } from './command_line.mjs';
import { readNpyFloat32, writeNpyFloat32 } from './npy.mjs';

const require = createRequire(import.meta.url);

async function loadRuntime(backend) {
  if (backend === 'node') return import('onnxruntime-node');
  if (backend === 'web') {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.wasmPaths = path.dirname(require.resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm')) + '/';
    ort.env.wasm.numThreads = 1;
    return ort;
  }
  throw new Error(`unknown backend ${backend}: use node or web`);
}

async function run(backend, modelFile, inputsFile, outDir) {
  const { shape, data } = readNpyFloat32(inputsFile);
  const ort = await loadRuntime(backend);
  const session = await ort.InferenceSession.create(fs.readFileSync(modelFile), { executionProviders: [backend === 'web' ? 'wasm' : 'cpu'] });
  const started = performance.now();
  const results = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
  const milliseconds = performance.now() - started;
  fs.mkdirSync(outDir, { recursive: true });
  for (const name of session.outputNames) {
    writeNpyFloat32(path.join(outDir, `${name}.npy`), results[name].dims, results[name].data);
  }
  console.log(`onnxruntime-${backend}: ${path.basename(modelFile)} on [${shape}] in ${milliseconds.toFixed(0)} ms -> ${outDir}`);
}

const { positionals } = commandLineOrExit('onnx_run', 'usage: node tools/lib/onnx_run.mjs node|web MODEL.onnx INPUTS.npy OUT_DIR\n',
  { positionals: [4, 4] });
try {
  await run(...positionals);
} catch (error) {
  console.error(`onnx_run: ${error.message}`);
  process.exit(1);
}
