// Compressed DICOM as hospitals write it, decoded by the codecs the page and the CLI load (web/codecs/), against
// the toolkits that wrote each file: tests/support/make_codec_fixtures.py makes them with DCMTK and GDCM from
// images it makes (8, 12, 16 bits, signed and unsigned, MONOCHROME1/2, a VOI window) and decodes each with the
// same toolkit (dcmdjpeg, dcmdjpls, gdcmconv --raw). HTJ2K, which no Debian tool writes, is made here with
// OpenJPH's encoder and checked against the pixels it was made from; so are the syntaxes that no Debian tool
// writes but whose codestreams another syntax's encoder makes (JPEG 2000 Part 2, HTJ2K RPCL). With the datasets, a
// whole 12-bit film in each lossless syntax is scored by `tools/oac classify` exactly like its uncompressed original.
// run: OAC_WASM_BUILD_DIR=build/wasm node --test tests/node/dicom_codecs.test.mjs
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { loadCodecFromPackage } from '../../tools/app/classify.mjs';
import { MODEL_CARD, REPO_ROOT } from '../../tools/lib/paths.mjs';
import { CODEC_OF_SYNTAX, FrameDecoders } from '../../web/codecs/frame_decoders.js';

const PYTHON = process.env.OAC_PYTHON || '/usr/bin/python3';
const J2K_LOSSLESS = '1.2.840.10008.1.2.4.90';
const J2K = '1.2.840.10008.1.2.4.91';
const J2K_PART2_LOSSLESS = '1.2.840.10008.1.2.4.92';
const J2K_PART2 = '1.2.840.10008.1.2.4.93';
const HTJ2K_LOSSLESS = '1.2.840.10008.1.2.4.201';
const HTJ2K_RPCL = '1.2.840.10008.1.2.4.202';
const HTJ2K = '1.2.840.10008.1.2.4.203';
// OpenJPH's progression orders (ojph::PROGRESSION_ORDER): LRCP, RLCP, RPCL, PCRL, CPRL.
const OPENJPH_RPCL = 2;
const wasmDir = process.env.OAC_WASM_BUILD_DIR || path.join(REPO_ROOT, 'build/wasm');
const { default: createOacCore } = await import(pathToFileURL(path.join(wasmDir, 'oac_core.mjs')).href);
const oac = await createOacCore({ wasmBinary: fs.readFileSync(path.join(wasmDir, 'oac_core.wasm')) });
const core = new oac.Core(fs.readFileSync(MODEL_CARD, 'utf8'));
const decoders = new FrameDecoders(loadCodecFromPackage);

// ctest hands over the folder its codec_fixtures step wrote (the Catch2 tests read it too); alone, the test makes its own.
const ownFixtures = !process.env.OAC_CODEC_FIXTURES;
const fixtures = process.env.OAC_CODEC_FIXTURES || fs.mkdtempSync(path.join(os.tmpdir(), 'oac-codec-fixtures-'));
if (ownFixtures) {
  const generator = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests/support/make_codec_fixtures.py'), '--out', fixtures],
    { encoding: 'utf8' });
  if (generator.status !== 0) throw new Error(`make_codec_fixtures.py failed: ${generator.stderr}`);
}
const { cases, films } = JSON.parse(fs.readFileSync(path.join(fixtures, 'codecs.json'), 'utf8'));
const read = (file) => new Uint8Array(fs.readFileSync(path.join(fixtures, file)));

/** Frame 1's stored samples from DCMTK's raw pixel data: bits_allocated wide, little-endian. */
function rawSamples(bytes, { bits_allocated: bitsAllocated, rows, columns }) {
  const all = bitsAllocated === 8 ? Uint16Array.from(bytes) : new Uint16Array(bytes.slice().buffer);
  return all.subarray(0, rows * columns);
}

/** How many samples differ in their stored bits (a signed value may come sign-extended or not). */
function differingSamples(decoded, reference, bitsStored) {
  assert.equal(decoded.length, reference.length, 'sample count');
  const mask = (1 << bitsStored) - 1;
  let differing = 0;
  for (let i = 0; i < decoded.length; i += 1) if ((decoded[i] ^ reference[i]) & mask) differing += 1;
  return differing;
}

async function decodeFrame(bytes) {
  const frame = core.compressedFrame(bytes);
  assert.equal(frame.error, '');
  return decoders.decode({ ...frame, codestream: frame.codestream.slice() });
}

/** What the core makes of a file for the model and the page: the outcome, each knee's tensor, the whole picture. */
function prepared(outcome) {
  if (!outcome.ok) return { error: outcome.error };
  const { ok, knees, width, height, pixel_spacing_mm: spacing } = outcome;
  return { ok, knees, width, height, spacing, tensors: knees.map((_, i) => Array.from(core.tensor(i))),
    overview: Array.from(core.overviewRgba(0).rgba) };
}

/**
 * A copy of `template` (a DICOM whose only fragment after the offset table is its codestream, and whose Pixel
 * Data is its last element) with another transfer syntax and codestream.
 */
function withCodestream(template, transferSyntax, codestream) {
  const bytes = Buffer.from(template);
  const metaLengthAt = 132 + 8;
  const syntaxAt = bytes.indexOf(Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49]), 132);
  const oldLength = bytes.readUInt16LE(syntaxAt + 6);
  const uid = Buffer.from(transferSyntax.length % 2 ? `${transferSyntax}\0` : transferSyntax, 'latin1');
  const header = Buffer.from([0x02, 0x00, 0x10, 0x00, 0x55, 0x49, uid.length, 0]);
  const pixelDataAt = bytes.lastIndexOf(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]));
  const item = (payload) => {
    const head = Buffer.from([0xfe, 0xff, 0x00, 0xe0, 0, 0, 0, 0]);
    head.writeUInt32LE(payload.length, 4);
    return Buffer.concat([head, payload]);
  };
  const evenCodestream = Buffer.concat([Buffer.from(codestream), Buffer.alloc(codestream.length % 2)]);
  const result = Buffer.concat([
    bytes.subarray(0, syntaxAt), header, uid, bytes.subarray(syntaxAt + 8 + oldLength, pixelDataAt + 12),
    item(Buffer.alloc(0)), item(evenCodestream), Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]),
  ]);
  result.writeUInt32LE(result.readUInt32LE(metaLengthAt) + uid.length - oldLength, metaLengthAt);
  return new Uint8Array(result);
}

/**
 * A lossless HTJ2K codestream of `samples`; `rpcl` makes it as HTJ2K Lossless RPCL (.202) asks: RPCL progression, a
 * TLM marker segment and a tile-part per resolution.
 */
async function encodeHtj2k(samples, { columns, rows, bits_stored: bitsStored, is_signed: isSigned }, { rpcl = false } = {}) {
  const codec = await loadCodecFromPackage('openjph');
  const encoder = new codec.HTJ2KEncoder();
  try {
    if (rpcl) {
      encoder.setProgressionOrder(OPENJPH_RPCL);
      encoder.setTLMMarker(true);
      encoder.setTilePartDivisionsAtResolutions(true);
    }
    const bytesPerSample = bitsStored > 8 ? 2 : 1;
    const raw = bytesPerSample === 2 ? new Uint8Array(samples.buffer.slice(0)) : Uint8Array.from(samples);
    encoder.getDecodedBuffer({ width: columns, height: rows, bitsPerSample: bitsStored, componentCount: 1,
      isSigned, isUsingColorTransform: false }).set(raw);
    encoder.encode();
    return encoder.getEncodedBuffer().slice();
  } finally {
    encoder.delete();
  }
}

/** The progression order of a JPEG 2000 codestream (its COD marker segment) and whether it has a TLM marker segment. */
function codestreamLayout(codestream) {
  const markerAt = (marker) => codestream.findIndex((byte, i) => byte === 0xff && codestream[i + 1] === marker);
  const cod = markerAt(0x52);
  return { progression: codestream[cod + 5], tlm: markerAt(0x55) > 0 };
}

/**
 * The syntaxes no Debian tool writes, each made from a file of syntax `from` whose codestream is valid for it too, or
 * whose samples another encoder compresses: codestream(frame 1 of that file, as the core hands it out; its samples).
 */
const RELABELLED = [
  // A JPEG 2000 Part 1 codestream is a Part 2 codestream that uses none of Part 2's extensions (ISO/IEC 15444-2
  // decoders read Part 1), so GDCM's .90 and .91 files stand for .92 and .93 with only their transfer syntax changed.
  { syntax: J2K_PART2_LOSSLESS, from: J2K_LOSSLESS, codestream: async (frame) => frame.codestream.slice() },
  { syntax: J2K_PART2, from: J2K, codestream: async (frame) => frame.codestream.slice() },
  { syntax: HTJ2K_LOSSLESS, from: J2K_LOSSLESS, codestream: async (frame, samples) => encodeHtj2k(samples, frame) },
  // HTJ2K (.203) allows any HTJ2K codestream, lossy or not; a lossless one can be checked to the sample.
  { syntax: HTJ2K, from: J2K_LOSSLESS, codestream: async (frame, samples) => encodeHtj2k(samples, frame) },
  { syntax: HTJ2K_RPCL, from: J2K_LOSSLESS, codestream: async (frame, samples) => encodeHtj2k(samples, frame, { rpcl: true }) },
];

/** `template` (a file of syntax `from`) as `syntax`, its frame 1 made from `samples`, the samples it holds. */
async function relabelled(template, samples, { syntax, codestream }) {
  const encoded = await codestream(core.compressedFrame(template), samples);
  if (syntax === HTJ2K_RPCL) assert.deepEqual(codestreamLayout(encoded), { progression: OPENJPH_RPCL, tlm: true });
  return withCodestream(template, syntax, encoded);
}

after(() => {
  if (ownFixtures) fs.rmSync(fixtures, { recursive: true, force: true });
});

describe('compressed DICOM frames against DCMTK and GDCM', () => {
  it('covers every syntax a Debian tool writes, at 8, 12 and 16 bits, signed and MONOCHROME1', () => {
    const syntaxes = new Set(cases.map((c) => c.syntax));
    for (const suffix of ['57', '70', '80', '81', '90', '91']) assert.ok(syntaxes.has(`1.2.840.10008.1.2.4.${suffix}`));
    assert.deepEqual([...new Set(cases.map((c) => c.bits_stored))].sort((a, b) => a - b), [8, 12, 16]);
    assert.ok(cases.some((c) => c.is_signed) && cases.some((c) => c.photometric === 'MONOCHROME1'));
    assert.ok(cases.filter((c) => c.frames > 1).length >= 3, 'multi-frame files in fragments, with and without offsets');
  });

  for (const c of cases) {
    it(`${c.name}: samples equal ${c.reference_tool}'s, and the core shows them as it shows ${c.reference_tool}'s file`, async () => {
      const bytes = read(c.file);
      const samples = await decodeFrame(bytes);
      assert.equal(differingSamples(samples, rawSamples(read(c.reference), c), c.bits_stored), 0);
      const decodedFile = `${path.basename(c.file, '.dcm')}.decoded.dcm`;
      const expected = prepared(core.prepare(read(decodedFile)));
      assert.deepEqual(prepared(core.prepareDecoded(bytes, samples)), expected);
      if (c.lossless) assert.deepEqual(prepared(core.prepare(read(c.original))), expected);
      const { frames } = core.prepareDecoded(bytes, samples);
      assert.equal(frames, c.frames, 'the number of frames, of which frame 1 is scored');
    });
  }

  for (const syntax of RELABELLED) {
    it(`${syntax.syntax}, made from each ${syntax.from} case, decodes to its reference samples and shows as it does`, async () => {
      const templates = cases.filter((c) => c.syntax === syntax.from);
      assert.ok(templates.length >= 5);
      for (const c of templates) {
        const file = await relabelled(read(c.file), rawSamples(read(c.reference), c), syntax);
        assert.equal(core.prepare(file).codec_syntax, syntax.syntax);
        const samples = await decodeFrame(file);
        assert.equal(differingSamples(samples, rawSamples(read(c.reference), c), c.bits_stored), 0, c.name);
        const shownAs = c.lossless ? c.original : `${path.basename(c.file, '.dcm')}.decoded.dcm`;
        assert.deepEqual(prepared(core.prepareDecoded(file, samples)), prepared(core.prepare(read(shownAs))), c.name);
      }
    });
  }
});

describe('broken compressed frames get a sentence, and the next file decodes', () => {
  const template = cases.find((c) => c.name === 'u12-j2k');
  const goodFile = read(template.file);

  async function outcomeOf(frameChange) {
    const frame = core.compressedFrame(goodFile);
    try {
      await decoders.decode(frameChange({ ...frame, codestream: frame.codestream.slice() }));
      return '';
    } catch (error) {
      return error.message;
    } finally {
      assert.equal(differingSamples(await decodeFrame(goodFile), rawSamples(read(template.reference), template), 12), 0);
    }
  }

  for (const c of cases.filter((entry) => entry.name.startsWith('u12-') && entry.lossless)) {
    it(`${c.name}: a codestream cut to a tenth`, async () => {
      const frame = core.compressedFrame(read(c.file));
      const cut = { ...frame, codestream: frame.codestream.slice(0, frame.codestream.length / 10) };
      let message = '';
      try {
        const samples = await decoders.decode(cut);
        // A codec that reads what is there (OpenJPEG does, as viewers show a partial image) must still give a
        // whole frame, which the core then checks.
        assert.equal(samples.length, c.rows * c.columns);
      } catch (error) {
        message = error.message;
      }
      if (message) assert.match(message, /image could not be decoded: the file may be truncated or damaged\.$/);
    });
  }

  it('garbage instead of a codestream', async () => {
    const message = await outcomeOf((frame) => ({ ...frame, codestream: new Uint8Array(64).fill(7) }));
    assert.equal(message, 'The DICOM file\'s JPEG 2000 Lossless image could not be decoded: the file may be truncated '
      + 'or damaged.');
  });

  it('a frame whose size disagrees with Rows x Columns', async () => {
    const message = await outcomeOf((frame) => ({ ...frame, rows: frame.rows + 1 }));
    assert.equal(message, `The DICOM file is damaged: its JPEG 2000 Lossless image is ${template.columns} x `
      + `${template.rows}, but its header says ${template.columns} x ${template.rows + 1}.`);
  });

  it('a decoder that throws, and one that cannot be loaded', async () => {
    const throwing = new FrameDecoders(async () => ({ J2KDecoder: class { constructor() { throw 12345; } } }));
    const frame = core.compressedFrame(goodFile);
    await assert.rejects(throwing.decode(frame), {
      message: 'The DICOM file\'s JPEG 2000 Lossless image could not be decoded: the file may be truncated or damaged.',
    });
    let attempts = 0;
    const unloadable = new FrameDecoders(async () => {
      attempts += 1;
      throw new Error('HTTP 404');
    });
    for (let i = 0; i < 2; i += 1) {
      await assert.rejects(unloadable.decode(frame), {
        message: 'The JPEG 2000 Lossless decoder could not be loaded (HTTP 404).',
      });
    }
    assert.equal(attempts, 2, 'a failed load is tried again');
  });

  it('decoded samples of the wrong count are refused by the core', () => {
    const outcome = core.prepareDecoded(goodFile, new Uint16Array(template.rows * template.columns - 1));
    assert.equal(outcome.ok, false);
    assert.equal(outcome.error, `The DICOM file is damaged: its compressed image decoded to ${template.rows * template.columns - 1} `
      + `samples, but its header describes ${template.columns} x ${template.rows} pixels with 1 sample(s) each `
      + `(${template.rows * template.columns}).`);
  });
});

describe('a whole 12-bit film scores the same compressed and uncompressed', { skip: films.length === 0 && 'no datasets' }, () => {
  it('tools/oac classify gives the same boxes and P(OA) within 1e-4 in every lossless syntax', async () => {
    // The lossless syntaxes no Debian tool writes, made from the JPEG 2000 film as the cases above are.
    const j2kFilm = read(films.find((film) => film.syntax === J2K_LOSSLESS).file);
    const samples = await decodeFrame(j2kFilm);
    const made = fs.mkdtempSync(path.join(os.tmpdir(), 'oac-relabelled-films-'));
    const madeFiles = [];
    for (const syntax of RELABELLED.filter((candidate) => candidate.from === J2K_LOSSLESS)) {
      madeFiles.push(path.join(made, `film12-${syntax.syntax}.dcm`));
      fs.writeFileSync(madeFiles.at(-1), await relabelled(j2kFilm, samples, syntax));
    }
    const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'tools/app/classify.mjs'), '--quiet',
      ...films.map((film) => path.join(fixtures, film.file)), ...madeFiles], { encoding: 'utf8', maxBuffer: 1 << 26 });
    fs.rmSync(made, { recursive: true, force: true });
    assert.equal(run.status, 0, run.stderr);
    // Every line JSON: the codecs' own console output (OpenJPEG reports each header) must not reach stdout.
    const results = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(results.length, films.length + madeFiles.length);
    const [original, ...compressed] = results;
    assert.equal(original.knees.length, 2, 'both knees of the bilateral film');
    for (const result of compressed) {
      assert.deepEqual(result.knees.map((knee) => knee.box), original.knees.map((knee) => knee.box), result.file);
      result.knees.forEach((knee, i) => assert.ok(Math.abs(knee.p_oa - original.knees[i].p_oa) <= 1e-4, result.file));
      assert.deepEqual(result.pixel_spacing_mm, original.pixel_spacing_mm);
    }
    const syntaxes = films.map((film) => film.syntax);
    assert.ok(Object.keys(CODEC_OF_SYNTAX).filter((uid) => syntaxes.includes(uid)).length >= 4);
  });
});
