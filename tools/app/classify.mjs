#!/usr/bin/env node
// `tools/oac classify`: classifies knee X-ray files with the same WASM core, the same model and the
// same engine module (web/engine.js) as the web app, through onnxruntime-node. Prints one JSON
// object per input file per line on stdout, progress on stderr.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ort from 'onnxruntime-node';
import { DEFAULT_KNEES_PER_RUN, KneeClassifier } from '../../web/engine.js';
import { CODECS, FrameDecoders, codecModuleOptions } from '../../web/codecs/frame_decoders.js';
import { HEAD_BYTES, sortFolder } from '../../web/dicom_folder.js';
import { CORE_MODULE_FILES, WASM_CORE_DIR, locateModel } from '../lib/artifacts.mjs';
import { UsageError, parseCommandLine, wholeNumber } from '../lib/command_line.mjs';
import { REPO_ROOT } from '../lib/paths.mjs';

const USAGE = `usage: tools/oac classify [--model CARD_OR_ONNX] [--files-from LIST] [--batch N] [--quiet] FILE|DIR...

Classifies knee X-rays (PNG, JPEG, BMP, DICOM) on this machine and prints one JSON object per file per line:
  {"file":…,"ok":true,"p_oa":…,"oa":…,"kl_probs":[…],"kl_grade":…,"kl_set":[…],"in_distribution":…,
   "oa_logit":…,"kl_logits":[…],"ood_score":…,"knees":[{"side":…,"p_oa":…,…}]}
or {"file":…,"ok":false,"error":"…"} for a file that could not be classified.
"kl_set" is the KL prediction set: the grades (ascending) that hold the true grade with the
card's kl_set.coverage (e.g. 0.9). Top-level fields are those of the knee with the highest p_oa. A DICOM file's result also has
"pixel_spacing_mm":[rows,columns] and "laterality" ("L","R","B","U") when its header gives them.

A folder (a patient's CD, a PACS export) is read by its DICOMDIR where it has one: the files it lists, grouped by
what its records say. Otherwise, or where the DICOMDIR is unreadable or lists a file that is not there (one line on
stderr says so), the folder is walked: its DICOM files are found by their preamble, whatever their names, PNG, JPEG
and BMP by their signatures; other files are passed over. Its images are classified in study and series order, each
result with "series" (e.g. "KNEE, series 2: AP"); the files that are not images (reports, presentation states) get
one line on stderr.

  --model CARD_OR_ONNX  model card (.json) or ONNX model; default: the trained model of
                        models/oa-inceptionv3.json, else the untrained placeholder in build/placeholder/
  --files-from LIST     also read file names from LIST, one per line ("-" for stdin)
  --batch N             knees per inference run (default ${DEFAULT_KNEES_PER_RUN})
  --quiet               no progress on stderr
  --self-test           only run the model card's known-answer self-test (which every run does first) and
                        print {"self_test":{…},"runtime":…}: exit 0 when it passes, 1 when it fails or the
                        card has none for its model

Exit status: 0 every file classified, 2 some file failed, 1 usage error, no usable model, or a runtime
that fails the model card's self-test (it names the runtime and the CPU).
`;

// onnxruntime-node's native start-up overflows the stack when the process's command line runs to tens
// of kilobytes, as a shell glob over a folder of X-rays makes it (exit 139, nothing printed). Such a
// run hands its file names to a child process through stdin instead.
const LONGEST_SAFE_COMMAND_LINE = 16_384;

function commandLineBytes() {
  return process.argv.reduce((total, arg) => total + Buffer.byteLength(arg) + 1, 0);
}

/** Runs this CLI again with the same options and the file names on stdin; resolves to its exit code. */
function classifyInChild(options) {
  const flags = [...(options.model ? ['--model', options.model] : []), '--batch', String(options.batch),
    ...(options.quiet ? ['--quiet'] : []), '--files-from', '-'];
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), ...flags], { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(`${options.files.join('\n')}\n`);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const OPTIONS = {
  model: { type: 'string', default: '' },
  'files-from': { type: 'string', multiple: true, default: [] },
  batch: { type: 'string', default: String(DEFAULT_KNEES_PER_RUN) },
  quiet: { type: 'boolean', short: 'q', default: false },
  'self-test': { type: 'boolean', default: false },
};

function parseArguments(argv) {
  const { values, positionals } = parseCommandLine({ options: OPTIONS, positionals: [0, Infinity], args: argv });
  return {
    help: Boolean(values.help),
    model: values.model,
    filesFrom: values['files-from'],
    batch: wholeNumber('--batch', values.batch),
    quiet: values.quiet,
    selfTest: values['self-test'],
    files: positionals,
  };
}

async function readFileList(list) {
  let text;
  try {
    text = list === '-' ? await readStdin() : await readFile(list, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read the file list ${list}: ${error.message}`);
  }
  return text.split(/\r?\n/).filter((line) => line.trim() !== '');
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads an input file, turning system errors into sentences. */
async function readImageFile(file) {
  try {
    const buffer = await readFile(file);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  } catch (error) {
    const reasons = {
      ENOENT: 'file not found',
      EISDIR: 'this is a folder, not an image file',
      EACCES: 'permission denied',
      EPERM: 'permission denied',
    };
    throw new Error(reasons[error.code] ?? `cannot read the file (${error.message})`);
  }
}

export async function loadCoreModule() {
  const [modulePath, wasmPath] = CORE_MODULE_FILES.map((file) => path.join(WASM_CORE_DIR, file));
  for (const file of [modulePath, wasmPath]) {
    if (!(await stat(file).catch(() => null))?.isFile()) {
      throw new Error(`the WASM core is not built: ${path.relative(REPO_ROOT, file)} is missing (tools/oac build)`);
    }
  }
  const { default: createCoreModule } = await import(pathToFileURL(modulePath).href);
  // Node's fetch() cannot read file URLs, so the module gets its .wasm bytes handed over.
  return createCoreModule({ wasmBinary: await readFile(wasmPath) });
}

// The CPU features that decide which of onnxruntime's x86 integer kernels run.
const INTEGER_KERNEL_FEATURES = ['avx2', 'avx512f', 'avx512_vnni', 'avx_vnni', 'amx_int8'];

/** The CPU's flags (empty off Linux) and, of them, the features that pick onnxruntime's x86 integer kernels. */
export function integerKernelFeatures() {
  let flags = [];
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
  } catch {
    // Not Linux: the CPU's model name is all there is to say.
  }
  return { flags, features: INTEGER_KERNEL_FEATURES.filter((feature) => flags.includes(feature)) };
}

/** onnxruntime-node, its version and the CPU in words, for the self-test's report and failure message. */
export function describeRuntime() {
  const { flags, features } = integerKernelFeatures();
  const cpu = `${os.cpus()[0]?.model?.trim() || 'an unknown CPU'} (${os.arch()}${flags.length
    ? `, CPU features: ${features.join(' ') || `none of ${INTEGER_KERNEL_FEATURES.join(', ')}`}` : ''})`;
  return `onnxruntime-node ${ort.env.versions?.node ?? ort.env.versions?.common ?? ''} on ${cpu}`;
}

/**
 * A DICOM codec from its npm package (the page loads the same files from web/dist/codecs/). Read by path:
 * Cornerstone's packages export only their main scripts.
 */
export async function loadCodecFromPackage(codecName) {
  const codec = CODECS[codecName];
  const file = (subpath) => path.join(REPO_ROOT, 'node_modules', codec.package, subpath);
  if (codec.esModule) return import(pathToFileURL(file(codec.script)).href);
  const createCodecModule = createRequire(import.meta.url)(file(codec.script));
  return createCodecModule(codecModuleOptions(await readFile(file(codec.wasm))));
}

async function filesUnder(folder) {
  const files = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const entryPath = path.join(folder, entry.name);
    if (entry.isDirectory()) files.push(...await filesUnder(entryPath));
    else if (entry.isFile()) files.push(entryPath);
  }
  return files;
}

async function fileHead(file) {
  const handle = await open(file);
  try {
    const head = new Uint8Array(HEAD_BYTES);
    const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
    return head.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/**
 * The command line's names with each folder replaced by its images (web/dicom_folder.js's order). Returns
 * { files, seriesOf: Map(file → series label), notes: [the sentences about the folders] }.
 */
async function expandFolders(names, coreModule) {
  const expanded = { files: [], seriesOf: new Map(), notes: [] };
  for (const name of names) {
    if (!(await stat(name).catch(() => null))?.isDirectory()) {
      expanded.files.push(name);
      continue;
    }
    const sorted = await sortFolder(await filesUnder(name), {
      head: fileHead,
      describe: async (file) => coreModule.describeDicom(await readImageFile(file)),
      readDirectory: async (file) => coreModule.readDicomdir(await readImageFile(file)),
      pathOf: (file) => path.relative(name, file).split(path.sep).join('/'),
    });
    for (const { file, series } of sorted.images) {
      expanded.files.push(file);
      if (series) expanded.seriesOf.set(file, series);
    }
    if (sorted.directory) expanded.notes.push(`${name}: ${sorted.directory}`);
    if (sorted.notImages) expanded.notes.push(`${name}: ${sorted.notImages}`);
    if (sorted.images.length === 0) expanded.notes.push(`${name}: no X-ray image was found in this folder`);
  }
  return expanded;
}

/** Creates the engine the CLI (and its tests) classify with; it refuses a runtime that fails the self-test. */
async function createCliClassifier({ model = '', kneesPerRun = DEFAULT_KNEES_PER_RUN } = {}) {
  const located = await locateModel(model);
  const [coreModule, modelBytes] = await Promise.all([loadCoreModule(), readFile(located.modelPath)]);
  const classifier = await KneeClassifier.create({
    ort,
    coreModule,
    cardText: located.cardText,
    modelBytes,
    executionProviders: ['cpu'],
    kneesPerRun,
    runtimeDescription: describeRuntime(),
    frameDecoders: new FrameDecoders(loadCodecFromPackage),
  });
  return { classifier, located };
}

class Progress {
  constructor(total, enabled) {
    this.total = total;
    this.enabled = enabled && total > 1;
    this.started = Date.now();
    this.lastReport = this.started;
    this.done = 0;
    this.failed = 0;
  }

  count(result) {
    this.done += 1;
    if (!result.ok) this.failed += 1;
    const now = Date.now();
    if (this.enabled && now - this.lastReport >= 2000) {
      this.lastReport = now;
      process.stderr.write(`classify: ${this.done}/${this.total} files, ${this.rate(now)} files/s\n`);
    }
  }

  rate(now) {
    return (this.done / Math.max((now - this.started) / 1000, 1e-3)).toFixed(1);
  }

  finish() {
    if (!this.enabled) return;
    const seconds = ((Date.now() - this.started) / 1000).toFixed(1);
    process.stderr.write(`classify: ${this.done} files in ${seconds} s (${this.rate(Date.now())} files/s), `
      + `${this.failed} failed\n`);
  }
}

async function main(argv) {
  let options;
  try {
    options = parseArguments(argv);
    if (options.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    for (const list of options.filesFrom) options.files.push(...await readFileList(list));
    if (options.files.length === 0 && !options.selfTest) throw new UsageError('no input files');
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`classify: ${error.message}\n\n${USAGE}`);
    return 1;
  }
  if (commandLineBytes() > LONGEST_SAFE_COMMAND_LINE) return classifyInChild(options);

  let engine;
  try {
    engine = await createCliClassifier({ model: options.model, kneesPerRun: options.batch });
  } catch (error) {
    process.stderr.write(`classify: ${error.message}\n`);
    return 1;
  }
  const { classifier, located } = engine;
  if (options.selfTest) {
    process.stdout.write(`${JSON.stringify({ self_test: classifier.selfTest, runtime: describeRuntime() })}\n`);
    if (!classifier.selfTest.checked) process.stderr.write(`classify: no self-test: ${classifier.selfTest.reason}\n`);
    await classifier.dispose();
    return classifier.selfTest.checked ? 0 : 1;
  }
  if (located.untrained && !options.quiet) {
    process.stderr.write(`classify: using the UNTRAINED placeholder ${located.modelPath}; `
      + 'its numbers mean nothing\n');
  }

  const { files, seriesOf, notes } = await expandFolders(options.files, classifier.coreModule);
  for (const note of notes) process.stderr.write(`classify: ${note}\n`);
  const progress = new Progress(files.length, !options.quiet);
  for await (const result of classifier.classifyFiles(files, readImageFile)) {
    const series = seriesOf.get(result.file);
    process.stdout.write(`${JSON.stringify(series ? { ...result, series } : result)}\n`);
    progress.count(result);
  }
  progress.finish();
  await classifier.dispose();
  return progress.failed > 0 ? 2 : 0;
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) {
  // A closed pipe (e.g. `| head`) is not an error worth a stack trace.
  process.stdout.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  }, (error) => {
    process.stderr.write(`classify: unexpected failure: ${error.stack ?? error}\n`);
    process.exitCode = 1;
  });
}
