// WebAssembly side of the cross-build parity tests (tests/python/core/test_core_parity.py,
// tests/dicom/test_dicom_builds.py): runs Core.prepare from build/wasm/oac_core.mjs (the module the
// web worker loads) and writes OUTPUT_DIR/<i>.f32, the float32 tensors of the i-th image's knees
// concatenated, and OUTPUT_DIR/self-test.f32, the card's self-test probe (Core.selfTestTensor).
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { commandLineOrExit } from '../../tools/lib/command_line.mjs';

const USAGE = 'usage: node tests/support/wasm_prepare_dump.mjs WASM_BUILD_DIR MODEL_CARD OUTPUT_DIR IMAGE...\n';
const { positionals: [wasmDir, cardPath, outputDir, ...images] } = commandLineOrExit('wasm_prepare_dump', USAGE,
  { positionals: [3, Infinity] });
const { default: createOacCore } = await import(pathToFileURL(path.join(wasmDir, 'oac_core.mjs')).href);
// Node 20's fetch() cannot read file URLs, so the binary is handed over directly.
const oac = await createOacCore({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'oac_core.wasm')) });
const core = new oac.Core(fs.readFileSync(cardPath, 'utf8'));
images.forEach((image, index) => {
  const result = core.prepare(new Uint8Array(fs.readFileSync(image)));
  if (!result.ok) {
    console.error(`${image}: ${result.error}`);
    process.exit(1);
  }
  const tensors = result.knees.map((_, knee) => Buffer.from(core.tensor(knee).slice().buffer));
  fs.writeFileSync(path.join(outputDir, `${index}.f32`), Buffer.concat(tensors));
});
fs.writeFileSync(path.join(outputDir, 'self-test.f32'), Buffer.from(core.selfTestTensor().slice().buffer));
core.delete();
