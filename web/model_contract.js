// What the engine (engine.js) needs of a model and its card: the tensor names the card declares, the shapes of
// the outputs a run returns, and the card's known-answer self-test, which a runtime must pass before it scores
// any knee.

/** The outputs the engine reads; the model card's "outputs" names every tensor of the model. */
export const OUTPUTS = Object.freeze({
  oaLogit: 'oa_logit',
  klLogits: 'kl_logits',
  cam: 'cam',
  oodScore: 'ood_score',
});
export const KL_GRADE_COUNT = 5;

/**
 * The tensor names are one contract, the card's "outputs": "input" names the model's input, every other
 * key an output. A sentence on what breaks it (the card, the engine's needs or the loaded model), or ''.
 */
export function contractMismatch(card, session) {
  const { input, ...outputs } = card.outputs ?? {};
  const cardOutputs = Object.keys(outputs);
  const unnamed = Object.values(OUTPUTS).filter((name) => !cardOutputs.includes(name));
  if (!input || unnamed.length > 0) {
    return `the model card's "outputs" must name the input and the outputs ${Object.values(OUTPUTS).join(', ')}`;
  }
  const absent = cardOutputs.filter((name) => !session.outputNames.includes(name));
  if (session.inputNames.length !== 1 || session.inputNames[0] !== input || absent.length > 0) {
    return `the model does not match its card: it takes ${session.inputNames.join(', ')} and gives `
      + `${session.outputNames.join(', ')}, the card names input ${input} and outputs ${cardOutputs.join(', ')}`;
  }
  return '';
}

/** Raised when the runtime computes the card's known-answer probe otherwise than the card expects. */
export class SelfTestError extends Error {}

/**
 * The card's known-answer self-test, run on a fresh session: the core makes the probe from the card
 * (Core.selfTestTensor) and the outputs must lie within the card's tolerance of those it expects, which
 * tools/model/self_test.py measured for this very model file on kernels that do not depend on the CPU.
 * Returns { checked: false, reason } when the card has no expectation for its model, else
 * { checked: true, passed, worst: { output, got, expected, difference, tolerance } }.
 */
export async function runSelfTest(session, core, card, ort) {
  const selfTest = card.self_test;
  if (!selfTest) return { checked: false, reason: 'the model card has no self_test' };
  if (selfTest.model_sha256 !== card.sha256) {
    return { checked: false, reason: 'the model card\'s self_test was measured for another model file' };
  }
  const probe = core.selfTestTensor().slice();
  const size = card.preprocess.input_size;
  const input = new ort.Tensor('float32', probe, [1, 3, size, size]);
  const outputs = await session.run({ [card.outputs.input]: input }, [OUTPUTS.oaLogit, OUTPUTS.klLogits, OUTPUTS.oodScore]);
  const got = {
    [OUTPUTS.oaLogit]: [outputs[OUTPUTS.oaLogit].data[0]],
    [OUTPUTS.klLogits]: Array.from(outputs[OUTPUTS.klLogits].data),
    [OUTPUTS.oodScore]: [outputs[OUTPUTS.oodScore].data[0]],
  };
  let worst = null;
  for (const [output, values] of Object.entries(got)) {
    const expected = [selfTest.expected[output]].flat();
    const tolerance = selfTest.tolerance[output];
    values.forEach((value, i) => {
      const difference = Number.isFinite(value) ? Math.abs(value - expected[i]) : Infinity;
      if (!worst || difference / tolerance > worst.difference / worst.tolerance) {
        worst = { output: expected.length > 1 ? `${output}[${i}]` : output, got: value, expected: expected[i], difference, tolerance };
      }
    });
  }
  return { checked: true, passed: worst.difference <= worst.tolerance, worst };
}

/** The self-test's failure in words, naming the runtime (and, where the caller knows them, the CPU's features). */
export function selfTestFailure(worst, runtimeDescription) {
  return `this device cannot run the model correctly: its known-answer self-test gave ${worst.output} = `
    + `${worst.got.toPrecision(6)} where the model card expects ${worst.expected.toPrecision(6)} (tolerance `
    + `${worst.tolerance}) on ${runtimeDescription}, so no knee is scored here`;
}

/**
 * A batch's outputs, one object per knee: { oa_logit, kl_logits (Float32Array[5]), ood_score, cam? { data, width,
 * height } }; an error when the shapes break the model contract.
 */
export function readOutputs(outputs, count, withCam) {
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
      oa_logit: oa[i],
      kl_logits: kl.slice(i * KL_GRADE_COUNT, (i + 1) * KL_GRADE_COUNT),
      ood_score: ood[i],
    };
    if (cam) {
      const size = cam.width * cam.height;
      knee.cam = { data: cam.data.slice(i * size, (i + 1) * size), width: cam.width, height: cam.height };
    }
    return knee;
  });
}
