// Runs Core.prepare of build/wasm/oac_core.mjs (the module the page's worker and the CLI load) on files
// and prints one JSON array: per file { ok, error, pixel_spacing_mm, laterality, knees, controlUnchanged }.
// After each file the control image is prepared again and its tensors compared with its first run, so a
// bad file that left state behind in the core shows as controlUnchanged: false.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { commandLineOrExit } from '../../tools/lib/command_line.mjs';

const USAGE = 'usage: node tests/support/embind_prepare.mjs WASM_BUILD_DIR MODEL_CARD CONTROL_FILE FILE...\n';
const { positionals: [wasmDir, cardPath, controlPath, ...files] } = commandLineOrExit('embind_prepare', USAGE,
  { positionals: [3, Infinity] });
const { default: createOacCore } = await import(pathToFileURL(path.join(wasmDir, 'oac_core.mjs')).href);
const oac = await createOacCore({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'oac_core.wasm')) });
const core = new oac.Core(fs.readFileSync(cardPath, 'utf8'));

const control = new Uint8Array(fs.readFileSync(controlPath));
const controlTensors = () => {
  const { ok, knees } = core.prepare(control);
  if (!ok) throw new Error(`the control image ${controlPath} does not prepare`);
  return Array.from(knees, (_, i) => Buffer.from(core.tensor(i).slice().buffer));
};
const expectedControl = controlTensors();

const results = files.map((file) => {
  const { ok, error, pixel_spacing_mm, laterality, knees } = core.prepare(new Uint8Array(fs.readFileSync(file)));
  const result = { ok, error, pixel_spacing_mm, laterality, knees: knees.length };
  const again = controlTensors();
  result.controlUnchanged = again.length === expectedControl.length
    && again.every((tensor, i) => tensor.equals(expectedControl[i]));
  return result;
});
core.delete();
process.stdout.write(JSON.stringify(results));
