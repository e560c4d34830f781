// Finds what the web build and the CLI run, so both always use the same files: the WASM core
// (build/wasm, or OAC_WASM_BUILD_DIR) and the model with its card. The model is the trained
// models/<model_file> when it exists, else the newest untrained placeholder written by
// tools/model/export_onnx.py --untrained (to build/placeholder/, or its default build/models/); the
// model file is checked against the card's sha256/bytes.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { MODEL_CARD, REPO_ROOT } from './paths.mjs';

export const WASM_CORE_DIR = process.env.OAC_WASM_BUILD_DIR
  ? path.resolve(process.env.OAC_WASM_BUILD_DIR)
  : path.join(REPO_ROOT, 'build', 'wasm');
/** The Emscripten ES module; its .wasm sits beside it. */
export const CORE_MODULE_FILES = ['oac_core.mjs', 'oac_core.wasm'];
export const PLACEHOLDER_DIR = path.join(REPO_ROOT, 'build', 'placeholder');
// Where `export_onnx.py --untrained` writes without --out; only its *-untrained.onnx files count.
const EXPORT_DEFAULT_DIR = path.join(REPO_ROOT, 'build', 'models');

export class ModelNotFoundError extends Error {}

async function isFile(filePath) {
  return (await stat(filePath).catch(() => null))?.isFile() ?? false;
}

async function readCard(cardPath) {
  let text;
  try {
    text = await readFile(cardPath, 'utf8');
  } catch {
    throw new ModelNotFoundError(`model card ${cardPath} cannot be read`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`model card ${cardPath} is not valid JSON (${error.message})`);
  }
}

export async function sha256OfFile(filePath) {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(filePath)) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** The newest placeholder .onnx, or null. */
async function newestPlaceholder() {
  const candidates = [];
  const collect = async (dir, accepts) => {
    for (const name of (await readdir(dir).catch(() => [])).filter(accepts)) {
      const filePath = path.join(dir, name);
      candidates.push({ filePath, mtime: (await stat(filePath)).mtimeMs });
    }
  };
  await collect(PLACEHOLDER_DIR, (name) => name.endsWith('.onnx'));
  await collect(EXPORT_DEFAULT_DIR, (name) => name.endsWith('-untrained.onnx'));
  candidates.sort((a, b) => b.mtime - a.mtime);
  return candidates[0]?.filePath ?? null;
}

/** A card written beside an .onnx (same stem) describes it best; else the repository's card. */
async function cardForOnnx(onnxPath) {
  const sibling = onnxPath.replace(/\.onnx$/i, '.json');
  return (await isFile(sibling)) ? sibling : MODEL_CARD;
}

async function chooseModel(requested) {
  if (requested) {
    const resolved = path.resolve(requested);
    if (!(await isFile(resolved))) throw new ModelNotFoundError(`${requested} does not exist`);
    if (/\.json$/i.test(resolved)) {
      const card = await readCard(resolved);
      if (!card.model_file) throw new Error(`model card ${requested} has no "model_file"`);
      return { cardPath: resolved, card, modelPath: path.resolve(path.dirname(resolved), card.model_file) };
    }
    if (/\.onnx$/i.test(resolved)) {
      const cardPath = await cardForOnnx(resolved);
      return { cardPath, card: await readCard(cardPath), modelPath: resolved };
    }
    throw new Error(`--model must be a model card (.json) or an ONNX model (.onnx), not ${requested}`);
  }
  const card = await readCard(MODEL_CARD);
  const trainedPath = path.join(path.dirname(MODEL_CARD), card.model_file);
  if (await isFile(trainedPath)) return { cardPath: MODEL_CARD, card, modelPath: trainedPath };

  const placeholder = await newestPlaceholder();
  if (!placeholder) {
    throw new ModelNotFoundError(`no model: neither ${path.relative(REPO_ROOT, trainedPath)} nor an untrained `
      + `placeholder in ${path.relative(REPO_ROOT, PLACEHOLDER_DIR)}/ exists `
      + '(make one with: tools/oac export --untrained --out build/placeholder/oa-inceptionv3-untrained.onnx)');
  }
  const cardPath = await cardForOnnx(placeholder);
  const placeholderCard = await readCard(cardPath);
  // The repository card describes the trained model, so its sha256/bytes do not apply here.
  const describesPlaceholder = cardPath !== MODEL_CARD;
  return {
    cardPath,
    card: describesPlaceholder ? placeholderCard : { ...placeholderCard, sha256: null, bytes: null },
    modelPath: placeholder,
    placeholder: true,
  };
}

/**
 * Resolves the model to use. `requested` is a card (.json) or an .onnx path, or empty for the default.
 * Returns { cardPath, modelPath, card, cardText, untrained }, where card has model_file, sha256 and
 * bytes filled in from the actual file. Throws when the file does not match the card.
 */
export async function locateModel(requested = '') {
  const { cardPath, card, modelPath, placeholder = false } = await chooseModel(requested);
  if (!(await isFile(modelPath))) {
    throw new ModelNotFoundError(`model file ${modelPath} named by ${cardPath} does not exist`);
  }
  const actual = await sha256OfFile(modelPath);
  if (card.sha256 && card.sha256.toLowerCase() !== actual.sha256) {
    throw new Error(`model file ${modelPath} is corrupted or not the one its card describes `
      + `(sha256 ${actual.sha256}, card says ${card.sha256})`);
  }
  if (Number.isFinite(card.bytes) && card.bytes !== actual.bytes) {
    throw new Error(`model file ${modelPath} has ${actual.bytes} bytes, its card says ${card.bytes}`);
  }
  const untrained = card.untrained === true || placeholder;
  const completedCard = {
    ...card,
    untrained,
    model_file: path.basename(modelPath),
    sha256: actual.sha256,
    bytes: actual.bytes,
  };
  return { cardPath, modelPath, card: completedCard, cardText: JSON.stringify(completedCard, null, 2), untrained };
}
