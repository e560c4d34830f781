// Prepended to oac_core.mjs (--extern-pre-js). Emscripten 3.1.6 emits CommonJS names
// (`require`, `__dirname`) on its Node path even in an ES module, where they do not exist;
// these module-scope definitions let the same file load in browsers, workers and Node.
// Under Node 20, still pass {wasmBinary} to the factory: its fetch() cannot read file URLs.
const oacIsNode = typeof process === 'object' && typeof process.versions === 'object' &&
  typeof process.versions.node === 'string';
const require = oacIsNode ? (await import('node:module')).createRequire(import.meta.url) : undefined;
const __dirname = oacIsNode ? require('node:path').dirname(require('node:url').fileURLToPath(import.meta.url)) : '';
