// The classification engine shared by the page's worker (onnxruntime-web) and the CLI
// (onnxruntime-node): feeding the core's tensors to ONNX Runtime, reading the outputs, interpreting
// them with the core, and summarising a file by its knees. Both callers inject their own `ort` and
// core module, so this file has no browser- or Node-only code and both get the same numbers.

import {
  KL_GRADE_COUNT, OUTPUTS, SelfTestError, contractMismatch, readOutputs, runSelfTest, selfTestFailure,
} from './model_contract.js';

/** Said of an image without a knee joint when the core gives no sentence of its own. */
const NO_KNEE_NOTICE = 'No knee joint was found in this image.';
/** Knees per session.run in batch mode: large enough for throughput, small enough for memory. */
export const DEFAULT_KNEES_PER_RUN = 16;

/**
 * Session options both runtimes use; `overrides` lets tools/bench/bench.mjs compare alternatives.
 * session.x64quantprecision keeps onnxruntime's x86 int8 kernels from their saturating 16-bit path on CPUs
 * without VNNI: a guard for any int8 model, beside the shipped model's weights that cannot overflow it.
 */
function sessionOptions(executionProviders, { extra = {}, ...overrides } = {}) {
  return {
    executionProviders,
    graphOptimizationLevel: 'all',
    ...overrides,
    extra: { ...extra, session: { x64quantprecision: '1', ...extra.session } },
  };
}

function errorMessage(error) {
  return error instanceof Error ? error.message : String(error);
}

/**
 * An ONNX model of one Identity node (x: float[1] -> y), protobuf-encoded here so that the app ships no second
 * model file. ModelProto: ir_version (field 1), graph (7: node 1, name 2, input 11, output 12), opset_import (8).
 */
export function identityModelBytes() {
  const varint = (value) => {
    const bytes = [];
    for (; value > 127; value >>>= 7) bytes.push((value & 127) | 128);
    return [...bytes, value];
  };
  const number = (field, value) => [...varint(field << 3), ...varint(value)];
  const message = (field, bytes) => [...varint((field << 3) | 2), ...varint(bytes.length), ...bytes];
  const text = (field, value) => message(field, [...new TextEncoder().encode(value)]);
  // ValueInfoProto: name, type = TypeProto.tensor_type { elem_type FLOAT (1), shape { dim { dim_value 1 } } }.
  const floatOfOne = (name) => [...text(1, name), ...message(2, message(1, [...number(1, 1),
    ...message(2, message(1, number(1, 1)))]))];
  const node = [...text(1, 'x'), ...text(2, 'y'), ...text(4, 'Identity')];
  const graph = [...message(1, node), ...text(2, 'start'), ...message(11, floatOfOne('x')), ...message(12, floatOfOne('y'))];
  return new Uint8Array([...number(1, 7), ...message(7, graph), ...message(8, number(2, 13))]);
}

/**
 * Starts ONNX Runtime (fetching and compiling its WebAssembly, starting its threads), which the first session
 * of a process pays for: a session of the one-node model, released at once. The page's worker runs it while the
 * model downloads, so the model's own session no longer waits for it.
 */
export async function startRuntime(ort, executionProviders) {
  const session = await ort.InferenceSession.create(identityModelBytes(), { executionProviders });
  await session.release?.();
}

export class KneeClassifier {
  /**
   * @param ort         onnxruntime-web or onnxruntime-node
   * @param coreModule  the instantiated Emscripten module (has the Embind `Core` class)
   * @param cardText    the model card JSON text
   * @param modelBytes  the ONNX model (Uint8Array)
   * @param runtimeDescription  the runtime (and CPU) in words, for the self-test's failure message
   * @param frameDecoders  web/codecs/frame_decoders.js's FrameDecoders, for DICOM frames the core leaves to a codec
   */
  static async create({ ort, coreModule, cardText, modelBytes, executionProviders,
    kneesPerRun = DEFAULT_KNEES_PER_RUN, sessionOptionOverrides = {}, runtimeDescription = 'this runtime',
    frameDecoders = null }) {
    const card = JSON.parse(cardText);
    const core = new coreModule.Core(cardText);
    // The core reports a bad card on every call; asking once now fails before the model loads.
    const probe = core.interpret(0, new Float32Array(KL_GRADE_COUNT), 0);
    if (!probe.ok) {
      core.delete();
      throw new Error(`the model card was rejected by the image core: ${probe.error}`);
    }
    let session;
    try {
      session = await ort.InferenceSession.create(modelBytes, sessionOptions(executionProviders, sessionOptionOverrides));
    } catch (error) {
      core.delete();
      throw new Error(`the model could not be loaded: ${errorMessage(error)}`);
    }
    const mismatch = contractMismatch(card, session);
    if (mismatch) {
      core.delete();
      await session.release?.();
      throw new Error(mismatch);
    }
    // The probe also warms the session up, so the first knee does not pay for its first run.
    const selfTest = await runSelfTest(session, core, card, ort);
    if (selfTest.checked && !selfTest.passed) {
      core.delete();
      await session.release?.();
      throw new SelfTestError(selfTestFailure(selfTest.worst, runtimeDescription));
    }
    return new KneeClassifier({ ort, session, inputName: card.outputs.input, coreModule, core,
      inputSize: card.preprocess.input_size, kneesPerRun, selfTest, frameDecoders });
  }

  constructor({ ort, session, inputName, coreModule, core, inputSize, kneesPerRun, selfTest, frameDecoders }) {
    this.ort = ort;
    this.session = session;
    this.inputName = inputName;
    this.coreModule = coreModule;
    this.core = core;
    this.inputSize = inputSize;
    this.kneesPerRun = kneesPerRun;
    /** What the known-answer self-test found when the session was created (runSelfTest). */
    this.selfTest = selfTest;
    this.frameDecoders = frameDecoders;
  }

  /** Bytes of the image core's WebAssembly memory; it grows to fit the largest image so far, never shrinks. */
  coreHeapBytes() {
    return this.coreModule.HEAP8.buffer.byteLength;
  }

  async dispose() {
    this.core.delete();
    await this.session.release?.();
  }

  /**
   * Decodes one image and finds its knees. Returns { ok: false, error } or
   * { ok: true, width, height, knees: [{ side, patient_side, box, by_hand, inverted, width, height, tensor }], notice,
   * metadata }: the knees as the core describes them (box: [x0, y0, x1, y1] in pixels of the decoded image), each
   * with its tensor copied out of the core's heap; metadata holds the DICOM header's pixel_spacing_mm
   * ([rows, columns]) and laterality, when present, and its Number of Frames when over 1 (frame 1 is scored).
   * An image that decoded but shows no knee joint has knees [] and `notice` saying so; the core keeps its
   * picture, so setBox() can add a knee a person drew. The core keeps the knees until the next prepare(),
   * so views() and setBox() refer to this image. A DICOM frame the core leaves to a codec (prepared.codec_syntax)
   * is decoded by frameDecoders and handed back to the core, which does the rest.
   */
  async prepare(bytes) {
    let prepared;
    try {
      prepared = this.core.prepare(bytes);
      if (!prepared.ok && prepared.codec_syntax && this.frameDecoders) prepared = await this.prepareCompressed(bytes);
    } catch (error) {
      return { ok: false, error: `the image could not be processed (${errorMessage(error)})` };
    }
    if (!prepared.ok) return { ok: false, error: prepared.error || 'the image could not be read' };
    const knees = prepared.knees.map((knee, i) => this.withTensor(knee, i));
    const notice = knees.length === 0 ? (prepared.notice || NO_KNEE_NOTICE) : '';
    return { ok: true, width: prepared.width, height: prepared.height, knees, notice, metadata: dicomMetadata(prepared) };
  }

  /** prepare()'s core outcome for a DICOM whose frame a codec decodes; a codec's failure is the outcome's error. */
  async prepareCompressed(bytes) {
    const frame = this.core.compressedFrame(bytes);
    if (!frame.ok) return frame;
    let samples;
    try {
      // The codestream view lies in the core's heap, which the next core call may reuse.
      samples = await this.frameDecoders.decode({ ...frame, codestream: frame.codestream.slice() });
    } catch (error) {
      return { ok: false, error: errorMessage(error) };
    }
    return this.core.prepareDecoded(bytes, samples);
  }

  /**
   * Crops knee `index` of the last prepared image from a box a person set ([x0, y0, x1, y1] in pixels of
   * the decoded image; the core squares it and moves it inside the picture, as squareBox() shows it); index ===
   * the number of knees adds one. Returns { ok: true, knee } (as prepare() describes knees, by_hand true) or
   * { ok: false, error }.
   */
  setBox(index, box) {
    let outcome;
    try {
      outcome = this.core.setBox(index, ...box);
    } catch (error) {
      return { ok: false, error: `the box could not be set (${errorMessage(error)})` };
    }
    if (!outcome.ok) return { ok: false, error: outcome.error || 'the box could not be set' };
    return { ok: true, knee: this.withTensor(outcome.knee, index) };
  }

  /**
   * The last prepared image as a whole, grey, fitted within maxSide pixels: { width, height, grey } with one
   * byte per pixel (copied out of the core's heap), for drawing the knees' boxes over; null before a prepare.
   */
  overview(maxSide) {
    const view = this.core.overviewRgba(maxSide);
    if (!view.width || !view.height) return null;
    const rgba = view.rgba;
    const grey = new Uint8Array(view.width * view.height);
    for (let i = 0; i < grey.length; i += 1) grey[i] = rgba[i * 4];
    return { width: view.width, height: view.height, grey };
  }

  /** Knee `index` as the core describes it, with its tensor copied out of the heap. */
  withTensor(knee, index) {
    return { ...knee, tensor: this.core.tensor(index).slice() };
  }

  /**
   * Knee i of the last prepared image as the page draws it: { width, height, cropRgba, camRgba },
   * its canonical crop fitted within maxSide pixels, grey and as heatmap colours (RGBA byte copies).
   */
  views(index, cam, maxSide) {
    const crop = this.core.cropRgba(index, maxSide);
    const cropRgba = crop.rgba.slice();  // the next core call reuses the heap bytes behind the view
    const heatmap = this.core.renderCam(index, cam.data, cam.width, cam.height, 1, maxSide);
    return { width: crop.width, height: crop.height, cropRgba, camRgba: heatmap.rgba.slice() };
  }

  /**
   * Runs the model on knee tensors, at most kneesPerRun per session.run.
   * Returns per knee { oa_logit, kl_logits (Float32Array[5]), ood_score, cam? { data, width, height } }.
   */
  async infer(tensors, { withCam = false } = {}) {
    const tensorLength = 3 * this.inputSize * this.inputSize;
    const fetches = [OUTPUTS.oaLogit, OUTPUTS.klLogits, OUTPUTS.oodScore];
    if (withCam) fetches.push(OUTPUTS.cam);
    const raw = [];
    for (let start = 0; start < tensors.length; start += this.kneesPerRun) {
      const chunk = tensors.slice(start, start + this.kneesPerRun);
      const batch = new Float32Array(chunk.length * tensorLength);
      chunk.forEach((tensor, i) => {
        if (tensor.length !== tensorLength) {
          throw new Error(`the core produced ${tensor.length} values per knee, the model needs ${tensorLength}`);
        }
        batch.set(tensor, i * tensorLength);
      });
      const input = new this.ort.Tensor('float32', batch, [chunk.length, 3, this.inputSize, this.inputSize]);
      const outputs = await this.session.run({ [this.inputName]: input }, fetches);
      raw.push(...readOutputs(outputs, chunk.length, withCam));
    }
    return raw;
  }

  /**
   * Calibrated result of one knee, in the CLI's JSON vocabulary: the knee, the core's prediction as the core gives
   * it, and the model's outputs.
   */
  interpret(knee, raw) {
    const { ok, error, ...prediction } = this.core.interpret(raw.oa_logit, raw.kl_logits, raw.ood_score);
    if (!ok) throw new Error(`the model outputs could not be interpreted: ${error}`);
    return {
      side: knee.side,
      ...(knee.patient_side ? { patient_side: knee.patient_side } : {}),
      box: knee.box,
      ...(knee.by_hand ? { by_hand: true } : {}),
      ...(knee.inverted ? { inverted: true } : {}),
      ...prediction,
      oa_logit: raw.oa_logit,
      kl_logits: Array.from(raw.kl_logits),
      ood_score: raw.ood_score,
    };
  }

  /**
   * Classifies one image with everything the page shows. Returns { summary } (a fileResult, or a
   * failedFileResult when the image cannot be read) and, on success, views: one per knee,
   * { side, width, height, cropRgba, camRgba } (see views(); at most viewMaxSide pixels a side, the
   * page's largest heatmap on a high-density screen), and timings: milliseconds spent in
   * { prepare (decode to tensors), inference (session.run), views }.
   */
  async classifyImage(file, bytes, { viewMaxSide = 512, overviewMaxSide = 0, boxes = [] } = {}) {
    const started = performance.now();
    const prepared = await this.prepareWithBoxes(bytes, boxes);
    if (!prepared.ok) return { summary: failedFileResult(file, prepared.error) };
    const image = { width: prepared.width, height: prepared.height };
    const overview = overviewMaxSide > 0 ? this.overview(overviewMaxSide) : null;
    const prepareEnded = performance.now();
    if (prepared.knees.length === 0) {
      // Never the whole image as one knee: the page offers to draw the knee's box instead.
      const timings = { prepare: prepareEnded - started, inference: 0, views: 0 };
      return { summary: noKneeResult(file, prepared.notice, prepared.metadata), image, overview, views: [], timings };
    }
    const raw = await this.infer(prepared.knees.map((knee) => knee.tensor), { withCam: true });
    const inferenceEnded = performance.now();
    const views = prepared.knees.map((knee, i) => ({ side: knee.side, ...this.views(i, raw[i].cam, viewMaxSide) }));
    const knees = prepared.knees.map((knee, i) => this.interpret(knee, raw[i]));
    const timings = {
      prepare: prepareEnded - started,
      inference: inferenceEnded - prepareEnded,
      views: performance.now() - inferenceEnded,
    };
    return { summary: fileResult(file, knees, prepared.metadata), image, overview, views, timings };
  }

  /**
   * prepare(), then the boxes a person set on this image before ([{ index, box }], in index order) applied
   * again with setBox(): what the core held for the image when those boxes were scored.
   */
  async prepareWithBoxes(bytes, boxes = []) {
    const prepared = await this.prepare(bytes);
    if (!prepared.ok) return prepared;
    for (const { index, box } of [...boxes].sort((a, b) => a.index - b.index)) {
      const set = this.setBox(index, box);
      if (!set.ok) return { ok: false, error: set.error };
      prepared.knees[index] = set.knee;
    }
    if (prepared.knees.length) prepared.notice = '';
    return prepared;
  }

  /**
   * Scores knee `index` of the last prepared image again from a box a person set (see setBox(); index ===
   * the number of knees adds one). Returns { ok: true, knee (an interpret() result, by_hand true), view
   * ({ side, width, height, cropRgba, camRgba }), timings } or { ok: false, error }.
   */
  async rescoreKnee(index, box, { viewMaxSide = 512 } = {}) {
    const started = performance.now();
    const set = this.setBox(index, box);
    if (!set.ok) return set;
    const prepareEnded = performance.now();
    const [raw] = await this.infer([set.knee.tensor], { withCam: true });
    const inferenceEnded = performance.now();
    const view = { side: set.knee.side, ...this.views(index, raw.cam, viewMaxSide) };
    const knee = this.interpret(set.knee, raw);
    const timings = {
      prepare: prepareEnded - started,
      inference: inferenceEnded - prepareEnded,
      views: performance.now() - inferenceEnded,
    };
    return { ok: true, knee, view, timings };
  }

  /**
   * Classifies many files for the CLI, batching knees across files. `files` is an iterable of
   * names, `readBytes(name)` loads one (may throw). Yields one fileResult/failedFileResult per file,
   * in input order, as soon as its batch is done.
   */
  async *classifyFiles(files, readBytes) {
    let pending = [];
    let pendingKnees = 0;
    const flush = async () => {
      const prepared = pending.filter((entry) => entry.knees);
      let raw = [];
      let runError = null;
      try {
        raw = await this.infer(prepared.flatMap((entry) => entry.knees.map((knee) => knee.tensor)));
      } catch (error) {
        // One bad run fails the files of this batch only; the next batch starts afresh.
        runError = `the model could not run on this image (${errorMessage(error)})`;
      }
      let next = 0;
      const results = pending.map((entry) => {
        if (!entry.knees) return failedFileResult(entry.file, entry.error);
        if (runError) return failedFileResult(entry.file, runError);
        const knees = entry.knees.map((knee) => this.interpret(knee, raw[next++]));
        return fileResult(entry.file, knees, entry.metadata);
      });
      pending = [];
      pendingKnees = 0;
      return results;
    };
    for (const file of files) {
      let entry;
      try {
        const prepared = await this.prepare(await readBytes(file));
        if (!prepared.ok) entry = { file, error: prepared.error };
        else if (prepared.knees.length === 0) entry = { file, error: prepared.notice };  // nobody here to draw a box
        else entry = { file, knees: prepared.knees, metadata: prepared.metadata };
      } catch (error) {
        entry = { file, error: errorMessage(error) };
      }
      pending.push(entry);
      pendingKnees += entry.knees?.length ?? 0;
      if (pendingKnees >= this.kneesPerRun) yield* await flush();
    }
    if (pending.length) yield* await flush();
  }
}

/**
 * A file's result: the knee with the highest P(OA) on top, every knee under `knees`, then the file's
 * metadata (pixel_spacing_mm, laterality) where its header had them.
 */
export function fileResult(file, knees, metadata = {}) {
  const top = knees.reduce((best, knee) => (knee.p_oa > best.p_oa ? knee : best));
  return { file, ok: true, ...top, knees, ...metadata };
}

/**
 * A file that decoded but shows no knee joint the core could find: { file, ok: true, knees: [], notice, ...metadata }.
 * The page shows the notice and offers to draw the knee's box; nothing is scored.
 */
export function noKneeResult(file, notice, metadata = {}) {
  return { file, ok: true, knees: [], notice: notice || NO_KNEE_NOTICE, ...metadata };
}

export function failedFileResult(file, error) {
  return { file, ok: false, error };
}

/**
 * The square the core crops for a box a person proposes ([x0, y0, x1, y1], in pixels of a width × height image):
 * { ok: true, box } or { ok: false, error }. The page draws a moving box as this returns it.
 */
export function squareBox(coreModule, box, width, height) {
  const { ok, error, box: square } = coreModule.squareBox(width, height, ...box);
  return ok ? { ok, box: square } : { ok, error };
}

/**
 * The facts a DICOM header adds to a file's result, from the core's prepare() or an earlier result: pixel_spacing_mm
 * ([rows, columns]) and laterality when present, and the Number of Frames when over 1 (frame 1 is scored).
 */
export function dicomMetadata(source) {
  const metadata = {};
  if (source.pixel_spacing_mm) metadata.pixel_spacing_mm = source.pixel_spacing_mm;
  if (source.laterality) metadata.laterality = source.laterality;
  if (source.frames > 1) metadata.frames = source.frames;
  return metadata;
}
