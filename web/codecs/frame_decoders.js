// Decoders for the compressed DICOM frames the image core leaves to codecs made for them (JPEG Lossless,
// JPEG-LS, JPEG 2000, HTJ2K). The core finds the frame and applies everything after decoding; a codec only
// turns the frame's codestream into samples. Shared by the page's worker and the CLI, as engine.js is:
// each injects how a codec is loaded (browser: web/dist/codecs/, fetched on first use and kept by the
// service worker; Node: node_modules), so a codec costs nothing until a file needs it.

/** The npm package behind each codec, and its files: `script` and `wasm` are package subpaths. */
export const CODECS = Object.freeze({
  'jpeg-lossless': {
    package: 'jpeg-lossless-decoder-js', script: 'release/lossless.js', wasm: null, esModule: true,
  },
  charls: {
    package: '@cornerstonejs/codec-charls', script: 'dist/charlswasm_decode.js', wasm: 'dist/charlswasm_decode.wasm',
    esModule: false,
  },
  openjpeg: {
    package: '@cornerstonejs/codec-openjpeg', script: 'dist/openjpegwasm_decode.js', wasm: 'dist/openjpegwasm_decode.wasm',
    esModule: false,
  },
  openjph: {
    package: '@cornerstonejs/codec-openjph', script: 'dist/openjphjs.js', wasm: 'dist/openjphjs.wasm',
    esModule: false,
  },
});

/** The file names a codec has in web/dist/codecs/: each script as an ES module, its WebAssembly beside it. */
export function distFiles(codecName) {
  const codec = CODECS[codecName];
  return { script: `${codecName}.mjs`, wasm: codec.wasm ? `${codecName}.wasm` : null };
}

/**
 * What a loader hands a codec's Emscripten factory: its WebAssembly bytes, and no console output (OpenJPEG
 * reports every header it reads, which would mix with the CLI's JSON on stdout).
 */
export function codecModuleOptions(wasmBinary) {
  const silent = () => {};
  return { wasmBinary, print: silent, printErr: silent };
}

const SYNTAX_PREFIX = '1.2.840.10008.1.2.4.';
/** Transfer syntax UID → codec. The core's table (wasm/src/dicom.cpp) marks the same syntaxes `outside`. */
export const CODEC_OF_SYNTAX = Object.freeze(Object.fromEntries([
  ['57', 'jpeg-lossless'], ['70', 'jpeg-lossless'],
  ['80', 'charls'], ['81', 'charls'],
  ['90', 'openjpeg'], ['91', 'openjpeg'], ['92', 'openjpeg'], ['93', 'openjpeg'],
  ['201', 'openjph'], ['202', 'openjph'], ['203', 'openjph'],
].map(([suffix, codec]) => [SYNTAX_PREFIX + suffix, codec])));

/** A codec's output bytes as one Uint16Array sample per value (two's complement bits kept for signed data). */
function samplesFromBytes(bytes, bitsPerSample) {
  if (bitsPerSample > 8) {
    const copy = bytes.slice();  // the view lies in the codec's heap, and Uint16Array needs an even offset
    return new Uint16Array(copy.buffer, 0, copy.length >> 1);
  }
  return Uint16Array.from(bytes);
}

/** A decoder of Cornerstone's codec builds (Embind classes of one pattern: encoded buffer in, decoded out). */
function decodeWithEmbindCodec(codecModule, className, codestream) {
  const decoder = new codecModule[className]();
  try {
    decoder.getEncodedBuffer(codestream.length).set(codestream);
    decoder.decode();
    const info = decoder.getFrameInfo();
    const samples = samplesFromBytes(decoder.getDecodedBuffer(), info.bitsPerSample);
    return { width: info.width, height: info.height, samples };
  } finally {
    decoder.delete();
  }
}

const DECODE = {
  'jpeg-lossless': (codecModule, frame) => {
    const copy = frame.codestream.slice();
    const decoder = new codecModule.Decoder();
    const decoded = decoder.decode(copy.buffer, 0, copy.length, frame.bits_allocated > 8 ? 2 : 1);
    const samples = decoded instanceof Uint16Array ? decoded : Uint16Array.from(decoded);
    return { width: decoder.xDim, height: decoder.yDim, samples };
  },
  charls: (codecModule, frame) => decodeWithEmbindCodec(codecModule, 'JpegLSDecoder', frame.codestream),
  openjpeg: (codecModule, frame) => decodeWithEmbindCodec(codecModule, 'J2KDecoder', frame.codestream),
  openjph: (codecModule, frame) => decodeWithEmbindCodec(codecModule, 'HTJ2KDecoder', frame.codestream),
};

export class FrameDecoders {
  /** @param loadCodec  (codecName) => Promise of the codec: the ES module, or the instantiated Emscripten module */
  constructor(loadCodec) {
    this.loadCodec = loadCodec;
    this.loaded = new Map();
  }

  /** A codec, loaded on first use; a failed load is tried again next time. */
  codec(codecName) {
    if (!this.loaded.has(codecName)) {
      const loading = this.loadCodec(codecName);
      loading.catch(() => this.loaded.delete(codecName));
      this.loaded.set(codecName, loading);
    }
    return this.loaded.get(codecName);
  }

  /**
   * Frame 1 as the core's compressedFrame() describes it → its samples (Uint16Array, rows x columns x samples
   * per pixel). Throws an Error whose message is a sentence for the person who opened the file.
   */
  async decode(frame) {
    const codecName = CODEC_OF_SYNTAX[frame.transfer_syntax];
    if (!codecName) throw new Error(`No codec here decodes ${frame.syntax_name} (transfer syntax ${frame.transfer_syntax}).`);
    let codecModule;
    try {
      codecModule = await this.codec(codecName);
    } catch (error) {
      throw new Error(`The ${frame.syntax_name} decoder could not be loaded (${error?.message ?? error}).`);
    }
    let decoded;
    try {
      decoded = DECODE[codecName](codecModule, frame);
      // OpenJPEG answers a stream it cannot read with an empty image rather than an exception.
      if (decoded.samples.length === 0) throw new Error('no samples');
    } catch {
      // What a codec says (a C++ exception's address, where its build has no exception support) helps nobody
      // who opened the file.
      throw new Error(`The DICOM file's ${frame.syntax_name} image could not be decoded: the file may be truncated `
        + 'or damaged.');
    }
    if (decoded.width !== frame.columns || decoded.height !== frame.rows) {
      throw new Error(`The DICOM file is damaged: its ${frame.syntax_name} image is ${decoded.width} x ${decoded.height}, `
        + `but its header says ${frame.columns} x ${frame.rows}.`);
    }
    return decoded.samples;
  }
}
