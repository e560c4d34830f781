#!/usr/bin/env node
// Builds web/dist/: one self-contained folder any static host can serve, also under a sub-path
// (every URL in it is relative). It holds the page, its worker and service worker, ONNX Runtime
// Web's WASM build, the WASM core, the model and its completed card, PNG icons drawn from icons/icon.svg, and
// the DICOM codecs (codecs/), which the worker loads only when a file needs one.
//
//   node tools/app/build_web.mjs [--out DIR] [--model CARD_OR_ONNX]

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { CORE_MODULE_FILES, WASM_CORE_DIR, locateModel } from '../lib/artifacts.mjs';
import { commandLineOrExit } from '../lib/command_line.mjs';
import { REPO_ROOT, WEB_DIST } from '../lib/paths.mjs';
import { CODECS, distFiles } from '../../web/codecs/frame_decoders.js';
import { META_CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from './web_policy.mjs';

const WEB_SOURCE = path.join(REPO_ROOT, 'web');
const ORT_DIST = path.join(REPO_ROOT, 'node_modules', 'onnxruntime-web', 'dist');
// The WASM-only ES module build; it loads the threaded SIMD .mjs/.wasm pair from ort.env.wasm.wasmPaths.
const ORT_FILES = ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm'];
const ICON_SOURCE = 'icons/icon.svg';
const PAGE_FILES = ['index.html', 'styles.css', 'app.js', 'protocol.js', 'measures.js', 'worker.js', 'engine.js',
  'model_contract.js', 'dicom_folder.js', 'manifest.webmanifest', ICON_SOURCE, 'codecs/frame_decoders.js'];
// The page's modules (app.js imports them), each copied as it is.
const PAGE_MODULES = 'ui';
// The PNG icons manifest.webmanifest and index.html name, icons/icon-<size>.png.
const ICON_SIZES = [192, 512];
const RASTERISER = 'rsvg-convert';
const SERVICE_WORKER = 'sw.js';
const BUILD_MANIFEST_PATTERN = /\/\* BUILD_MANIFEST \*\/ \{[^\n]*\};/;
const execFileAsync = promisify(execFile);

/**
 * The PNG icon of `size` pixels a side, drawn from icons/icon.svg, the icon's one definition, by Debian's
 * rsvg-convert.
 */
async function rasteriseIcon(size) {
  const svg = path.join(WEB_SOURCE, ICON_SOURCE);
  try {
    const { stdout } = await execFileAsync(RASTERISER, ['--width', String(size), '--height', String(size), svg],
      { encoding: 'buffer' });
    return stdout;
  } catch (error) {
    if (error.code === 'ENOENT') {
      throw new Error(`${RASTERISER} is missing: it draws the PNG icons from web/${ICON_SOURCE} `
        + '(Debian package librsvg2-bin; run tools/oac setup)');
    }
    throw new Error(`${RASTERISER} could not draw web/${ICON_SOURCE}: ${error.stderr?.toString().trim() || error.message}`);
  }
}

/**
 * The codecs' files for web/dist/codecs/, as the worker imports them: an ES module stays as it is; Cornerstone's
 * Emscripten builds (UMD scripts, which a module worker cannot load with importScripts) get a module's default
 * export around them. Returns the files' paths in dist.
 */
async function copyCodecs(dist) {
  const files = [];
  for (const [codecName, codec] of Object.entries(CODECS)) {
    const source = path.join(REPO_ROOT, 'node_modules', codec.package);
    const target = distFiles(codecName);
    const script = await readFile(path.join(source, codec.script), 'utf8');
    const asModule = codec.esModule ? script
      : `const module = { exports: {} };\nconst exports = module.exports;\n${script}\nexport default module.exports;\n`;
    await writeFile(path.join(dist, 'codecs', target.script), asModule);
    files.push(`codecs/${target.script}`);
    if (target.wasm) {
      await copyFile(path.join(source, codec.wasm), path.join(dist, 'codecs', target.wasm));
      files.push(`codecs/${target.wasm}`);
    }
  }
  return files;
}

async function requireFile(filePath, hint) {
  if (!(await stat(filePath).catch(() => null))?.isFile()) {
    throw new Error(`${path.relative(REPO_ROOT, filePath)} is missing${hint ? ` (${hint})` : ''}`);
  }
}

async function listFiles(dir, prefix = '') {
  const files = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const relative = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) files.push(...await listFiles(path.join(dir, entry.name), relative));
    else files.push(relative);
  }
  return files.sort();
}

async function sha256OfBytes(filePath) {
  return createHash('sha256').update(await readFile(filePath)).digest('hex');
}

/** A content hash of the whole build: it names the service worker's cache. */
async function buildVersion(dist, knownHashes) {
  const hash = createHash('sha256');
  for (const file of await listFiles(dist)) {
    hash.update(`${file}\0${knownHashes.get(file) ?? await sha256OfBytes(path.join(dist, file))}\n`);
  }
  return hash.digest('hex').slice(0, 12);
}

export async function buildWeb({ out = WEB_DIST, model = '' } = {}) {
  const started = Date.now();
  const located = await locateModel(model);
  for (const file of ORT_FILES) await requireFile(path.join(ORT_DIST, file), 'run npm ci');
  for (const file of CORE_MODULE_FILES) await requireFile(path.join(WASM_CORE_DIR, file), 'build the WASM core first: tools/oac build');
  const pageFiles = [...PAGE_FILES, ...(await listFiles(path.join(WEB_SOURCE, PAGE_MODULES), PAGE_MODULES))];
  for (const file of [...pageFiles, SERVICE_WORKER]) await requireFile(path.join(WEB_SOURCE, file));
  for (const codec of Object.values(CODECS)) {
    for (const file of [codec.script, codec.wasm].filter(Boolean)) {
      await requireFile(path.join(REPO_ROOT, 'node_modules', codec.package, file), 'run npm ci');
    }
  }
  // Drawn before the old build is removed, so a missing rasteriser leaves it in place.
  const icons = await Promise.all(ICON_SIZES.map(async (size) => ({ size, png: await rasteriseIcon(size) })));

  const dist = path.resolve(out);
  await rm(dist, { recursive: true, force: true });
  await mkdir(path.join(dist, 'icons'), { recursive: true });
  await mkdir(path.join(dist, 'ort'));
  await mkdir(path.join(dist, 'core'));
  await mkdir(path.join(dist, 'model'));
  await mkdir(path.join(dist, 'codecs'));
  await mkdir(path.join(dist, PAGE_MODULES));

  for (const file of pageFiles) await copyFile(path.join(WEB_SOURCE, file), path.join(dist, file));
  for (const file of ORT_FILES) await copyFile(path.join(ORT_DIST, file), path.join(dist, 'ort', file));
  for (const file of CORE_MODULE_FILES) await copyFile(path.join(WASM_CORE_DIR, file), path.join(dist, 'core', file));
  const modelFile = `model/${located.card.model_file}`;
  await copyFile(located.modelPath, path.join(dist, modelFile));
  await writeFile(path.join(dist, 'model', 'card.json'), `${located.cardText}\n`);
  const codecFiles = await copyCodecs(dist);
  for (const { size, png } of icons) await writeFile(path.join(dist, 'icons', `icon-${size}.png`), png);

  // The model's hash is known from its card; hashing 100 MB again would only slow the build.
  const version = await buildVersion(dist, new Map([[modelFile, located.card.sha256]]));

  const indexPath = path.join(dist, 'index.html');
  const index = (await readFile(indexPath, 'utf8'))
    .replace('%CONTENT_SECURITY_POLICY%', META_CONTENT_SECURITY_POLICY)
    .replace('%BUILD_VERSION%', version);
  await writeFile(indexPath, index);

  // The model stays out of the shell cache: worker.js verifies it and keeps it in its own cache. The codecs stay
  // out of the first visit's download: the service worker keeps each when a file first needs it.
  const shellFiles = ['./', ...(await listFiles(dist)).filter((file) => file !== modelFile && !codecFiles.includes(file))];
  const serviceWorker = await readFile(path.join(WEB_SOURCE, SERVICE_WORKER), 'utf8');
  if (!BUILD_MANIFEST_PATTERN.test(serviceWorker)) throw new Error(`${SERVICE_WORKER} lost its BUILD_MANIFEST marker`);
  const manifest = JSON.stringify({ version, files: shellFiles, keptOnFirstUse: codecFiles, headers: SECURITY_HEADERS });
  await writeFile(path.join(dist, SERVICE_WORKER), serviceWorker.replace(BUILD_MANIFEST_PATTERN, () => `/* BUILD_MANIFEST */ ${manifest};`));

  let totalBytes = 0;
  for (const file of await listFiles(dist)) totalBytes += (await stat(path.join(dist, file))).size;
  return {
    dist,
    version,
    totalBytes,
    modelPath: located.modelPath,
    untrained: located.untrained,
    modelBytes: located.card.bytes,
    seconds: (Date.now() - started) / 1000,
  };
}

const USAGE = 'usage: node tools/app/build_web.mjs [--out DIR] [--model CARD_OR_ONNX]\n'
  + '  Builds the web app into DIR (default web/dist/) with the trained model, else the untrained placeholder.\n';

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: options } = commandLineOrExit('build_web', USAGE, { options: { out: { type: 'string' }, model: { type: 'string' } } });
  try {
    const result = await buildWeb(options);
    const relative = path.relative(REPO_ROOT, result.modelPath);
    const model = relative.startsWith('..') ? result.modelPath : relative;
    process.stdout.write(`build_web: ${path.relative(process.cwd(), result.dist) || '.'} version ${result.version}, `
      + `${(result.totalBytes / 1e6).toFixed(1)} MB, model ${model} (${(result.modelBytes / 1e6).toFixed(1)} MB`
      + `${result.untrained ? ', UNTRAINED placeholder' : ''}), ${result.seconds.toFixed(1)} s\n`);
  } catch (error) {
    process.stderr.write(`build_web: ${error.message}\n`);
    process.exit(1);
  }
}
