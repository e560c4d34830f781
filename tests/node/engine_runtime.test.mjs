// web/engine.js's start of ONNX Runtime: the one-node model it encodes itself is a model ONNX Runtime loads and
// runs (its output is its input), and startRuntime leaves the runtime started for the model's own session.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as ort from 'onnxruntime-web';
import { identityModelBytes, startRuntime } from '../../web/engine.js';

ort.env.wasm.numThreads = 1;

describe('starting ONNX Runtime before the model arrives', () => {
  it('encodes a one-node model that ONNX Runtime runs', async () => {
    const session = await ort.InferenceSession.create(identityModelBytes(), { executionProviders: ['wasm'] });
    assert.deepEqual(session.inputNames, ['x']);
    assert.deepEqual(session.outputNames, ['y']);
    const { y } = await session.run({ x: new ort.Tensor('float32', new Float32Array([2.5]), [1]) });
    assert.deepEqual(Array.from(y.data), [2.5]);
    await session.release();
  });

  it('starts the runtime, or rejects when it cannot (the worker then lets the model\'s session say why)', async () => {
    assert.equal(await startRuntime(ort, ['wasm']), undefined);
    await assert.rejects(startRuntime(ort, ['no-such-backend']), /no-such-backend/);
  });
});
