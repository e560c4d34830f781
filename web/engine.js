// The classification engine shared by the page's worker (onnxruntime-web) and the CLI
// (onnxruntime-node): feeding the core's tensors to ONNX Runtime, reading the outputs, interpreting
// them with the core, and summarising a file by its knees. Both callers inject their own `ort` and
// core module, so this file has no browser- or Node-only code and both get the same numbers.

export const INPUT_NAME = 'image';
export const OUTPUTS = Object.freeze({
  oaLogit: 'oa_logit',
  klLogits: 'kl_logits',
  cam: 'cam',
  oodScore: 'ood_score',
});
export const KL_GRADE_COUNT = 5;
/** Knees per session.run in batch mode: large enough for throughput, small enough for memory. */
export const DEFAULT_KNEES_PER_RUN = 16;

/** Session options both runtimes use; `overrides` lets tools/bench.mjs compare alternatives. */
function sessionOptions(executionProviders, overrides) {
  return { executionProviders, graphOptimizationLevel: 'all', ...overrides };
}

/** Embind hands back JS arrays, typed arrays or registered vectors; all become number arrays. */
function toNumbers(values) {
  if (values && typeof values.size === 'function' && typeof values.get === 'function') {
    const numbers = Array.from({ length: values.size() }, (_, i) => values.get(i));
    values.delete?.();
    return numbers;
  }
  return Array.from(values, Number);
}

function errorMessage(error) {
  return error instanceof Error ? error.message : String(error);
}

export class KneeClassifier {
  /**
   * @param ort         onnxruntime-web or onnxruntime-node
   * @param coreModule  the instantiated Emscripten module (has the Embind `Core` class)
   * @param cardText    the model card JSON text
   * @param modelBytes  the ONNX model (Uint8Array)
   */
  static async create({ ort, coreModule, cardText, modelBytes, executionProviders,
    kneesPerRun = DEFAULT_KNEES_PER_RUN, sessionOptionOverrides = {} }) {
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
    return new KneeClassifier({ ort, session, coreModule, core, inputSize: card.preprocess.input_size, kneesPerRun });
  }

  constructor({ ort, session, coreModule, core, inputSize, kneesPerRun }) {
    this.ort = ort;
    this.session = session;
    this.coreModule = coreModule;
    this.core = core;
    this.inputSize = inputSize;
    this.kneesPerRun = kneesPerRun;
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
   * Decodes and canonicalises one image. Returns { ok: false, error } or
   * { ok: true, knees: [{ side, width, height, tensor }], metadata } with tensors copied out of the core's
   * heap; metadata holds the DICOM header's pixel_spacing_mm ([rows, columns]) and laterality, when present.
   * The core keeps the knees until the next prepare(), so views() refers to this image.
   */
  prepare(bytes) {
    let prepared;
    try {
      prepared = this.core.prepare(bytes);
    } catch (error) {
      return { ok: false, error: `the image could not be processed (${errorMessage(error)})` };
    }
    if (!prepared.ok) return { ok: false, error: prepared.error || 'the image could not be read' };
    const knees = Array.from(prepared.knees, (knee, i) => ({
      side: knee.side,
      width: knee.width,
      height: knee.height,
      tensor: this.core.tensor(i).slice(),
    }));
    if (knees.length === 0) return { ok: false, error: 'no knee was found in the image' };
    const metadata = {};
    if (prepared.pixelSpacing) metadata.pixel_spacing_mm = Array.from(prepared.pixelSpacing);
    if (prepared.laterality) metadata.laterality = prepared.laterality;
    return { ok: true, knees, metadata };
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
   * Returns per knee { oaLogit, klLogits (Float32Array[5]), oodScore, cam? { data, width, height } }.
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
      const outputs = await this.session.run({ [INPUT_NAME]: input }, fetches);
      raw.push(...readOutputs(outputs, chunk.length, withCam));
    }
    return raw;
  }

  /** Calibrated result of one knee, in the CLI's JSON vocabulary. */
  interpret(side, raw) {
    const prediction = this.core.interpret(raw.oaLogit, raw.klLogits, raw.oodScore);
    if (!prediction.ok) throw new Error(`the model outputs could not be interpreted: ${prediction.error}`);
    return {
      side,
      p_oa: prediction.pOa,
      oa: prediction.oa,
      kl_probs: toNumbers(prediction.klProbs),
      kl_grade: prediction.klGrade,
      in_distribution: prediction.inDistribution,
      oa_logit: raw.oaLogit,
      kl_logits: Array.from(raw.klLogits),
      ood_score: raw.oodScore,
    };
  }

  /**
   * Classifies one image with everything the page shows. Returns { summary } (a fileResult, or a
   * failedFileResult when the image cannot be read) and, on success, views: one per knee,
   * { side, width, height, cropRgba, camRgba } (see views(); at most viewMaxSide pixels a side, the
   * page's largest heatmap on a high-density screen), and timings: milliseconds spent in
   * { prepare (decode to tensors), inference (session.run), views }.
   */
  async classifyImage(file, bytes, { viewMaxSide = 512 } = {}) {
    const started = performance.now();
    const prepared = this.prepare(bytes);
    if (!prepared.ok) return { summary: failedFileResult(file, prepared.error) };
    const prepareEnded = performance.now();
    const raw = await this.infer(prepared.knees.map((knee) => knee.tensor), { withCam: true });
    const inferenceEnded = performance.now();
    // Views come first: they read the core's prepared knees, which interpret() may not keep.
    const views = prepared.knees.map((knee, i) => ({ side: knee.side, ...this.views(i, raw[i].cam, viewMaxSide) }));
    const knees = prepared.knees.map((knee, i) => this.interpret(knee.side, raw[i]));
    const timings = {
      prepare: prepareEnded - started,
      inference: inferenceEnded - prepareEnded,
      views: performance.now() - inferenceEnded,
    };
    return { summary: fileResult(file, knees, prepared.metadata), views, timings };
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
        const knees = entry.knees.map((knee) => this.interpret(knee.side, raw[next++]));
        return fileResult(entry.file, knees, entry.metadata);
      });
      pending = [];
      pendingKnees = 0;
      return results;
    };
    for (const file of files) {
      let entry;
      try {
        const prepared = this.prepare(await readBytes(file));
        entry = prepared.ok ? { file, knees: prepared.knees, metadata: prepared.metadata } : { file, error: prepared.error };
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

function readOutputs(outputs, count, withCam) {
  const oa = outputs[OUTPUTS.oaLogit].data;
  const kl = outputs[OUTPUTS.klLogits].data;
  const ood = outputs[OUTPUTS.oodScore].data;
  if (oa.length !== count || kl.length !== count * KL_GRADE_COUNT || ood.length !== count) {
    throw new Error('the model returned outputs of unexpected shapes; it does not follow the model contract');
  }
  let cam = null;
  if (withCam) {
    const dims = outputs[OUTPUTS.cam].dims;
    cam = { data: outputs[OUTPUTS.cam].data, height: Number(dims[dims.length - 2]), width: Number(dims[dims.length - 1]) };
  }
  return Array.from({ length: count }, (_, i) => {
    const knee = {
      oaLogit: oa[i],
      klLogits: kl.slice(i * KL_GRADE_COUNT, (i + 1) * KL_GRADE_COUNT),
      oodScore: ood[i],
    };
    if (cam) {
      const size = cam.width * cam.height;
      knee.cam = { data: cam.data.slice(i * size, (i + 1) * size), width: cam.width, height: cam.height };
    }
    return knee;
  });
}

/**
 * A file's result: the knee with the highest P(OA) on top, every knee under `knees`, then the file's
 * metadata (pixel_spacing_mm, laterality) where its header had them.
 */
export function fileResult(file, knees, metadata = {}) {
  const top = knees.reduce((best, knee) => (knee.p_oa > best.p_oa ? knee : best));
  return { file, ok: true, ...top, knees, ...metadata };
}

export function failedFileResult(file, error) {
  return { file, ok: false, error };
}
