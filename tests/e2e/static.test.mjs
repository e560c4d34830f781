// The static side, without a browser: what tools/app/serve.mjs sends, and what tools/app/build_web.mjs
// put in web/dist (relative URLs only, security policy, service-worker manifest, card, icons).

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { META_CONTENT_SECURITY_POLICY, SECURITY_HEADERS } from '../../tools/app/web_policy.mjs';
import { DIST, requirePrerequisites, serveApp } from './harness.mjs';

function fetchRaw(url, { method = 'GET', path: rawPath } = {}) {
  const target = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, method, path: rawPath ?? target.pathname }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? 'x' : undefined);
  });
}

describe('tools/app/serve.mjs', () => {
  let root;
  let server;
  const outsideRoot = path.join(tmpdir(), 'oac-serve-secret.txt');

  before(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'oac-serve-test-'));
    mkdirSync(path.join(root, 'core'));
    writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(path.join(root, 'core', 'a.wasm'), Buffer.from([0, 97, 115, 109]));
    writeFileSync(path.join(root, 'core', 'a.mjs'), 'export default 1;');
    writeFileSync(path.join(root, 'manifest.webmanifest'), '{}');
    writeFileSync(outsideRoot, 'secret');
    server = await serveApp({ root, prefix: '/sub/path/' });
  });
  after(async () => {
    await server.close();
    rmSync(root, { recursive: true, force: true });
    rmSync(outsideRoot, { force: true });
  });

  it('sends the isolation and security headers and correct MIME types', async () => {
    const expectations = { '': 'text/html; charset=utf-8', 'core/a.wasm': 'application/wasm',
      'core/a.mjs': 'text/javascript; charset=utf-8', 'manifest.webmanifest': 'application/manifest+json; charset=utf-8' };
    for (const [file, type] of Object.entries(expectations)) {
      const response = await fetchRaw(`${server.url}${file}`);
      assert.equal(response.status, 200, file);
      assert.equal(response.headers['content-type'], type, file);
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(response.headers[name.toLowerCase()], value);
    }
  });

  it('serves only under its prefix, never outside its root, and only GET/HEAD', async () => {
    assert.equal((await fetchRaw(`${server.origin}/sub/path`)).status, 301);
    assert.equal((await fetchRaw(`${server.origin}/index.html`)).status, 404);
    assert.equal((await fetchRaw(server.url, { path: '/sub/path/../../oac-serve-secret.txt' })).status, 404);
    assert.equal((await fetchRaw(server.url, { path: '/sub/path/..%2f..%2foac-serve-secret.txt' })).status, 404);
    assert.equal((await fetchRaw(`${server.url}missing.js`)).status, 404);
    assert.equal((await fetchRaw(server.url, { method: 'POST' })).status, 405);
    const head = await fetchRaw(`${server.url}core/a.wasm`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '4');
  });
});

describe('web/dist', () => {
  before(requirePrerequisites);

  const read = (file) => readFileSync(path.join(DIST, file), 'utf8');

  it('uses only relative URLs, so it works under any sub-path', () => {
    for (const file of ['index.html', 'app.js', 'worker.js', 'sw.js', 'manifest.webmanifest']) {
      const text = read(file);
      assert.doesNotMatch(text, /(?:src|href)=["']\/|["'`]\/(?:ort|core|model|icons)\//, `${file} has a root-relative URL`);
      assert.doesNotMatch(text, /https?:\/\/(?!www\.w3\.org\/2000\/svg)/, `${file} names another origin`);
    }
  });

  it('carries the CSP in a meta tag and the build version', () => {
    const index = read('index.html');
    assert.ok(index.includes(`<meta http-equiv="Content-Security-Policy" content="${META_CONTENT_SECURITY_POLICY}">`));
    assert.doesNotMatch(index, /%[A-Z_]+%/, 'every build placeholder is filled in');
  });

  it('gives the service worker a versioned manifest of the offline files and the headers', () => {
    const match = read('sw.js').match(/\/\* BUILD_MANIFEST \*\/ (\{[^\n]*\});/);
    assert.ok(match, 'the build manifest is in sw.js');
    const manifest = JSON.parse(match[1]);
    assert.match(manifest.version, /^[0-9a-f]{12}$/);
    assert.ok(read('index.html').includes(manifest.version));
    assert.deepEqual(manifest.headers, SECURITY_HEADERS);
    for (const file of ['./', 'index.html', 'app.js', 'worker.js', 'engine.js', 'ort/ort.wasm.min.mjs',
      'ort/ort-wasm-simd-threaded.mjs', 'ort/ort-wasm-simd-threaded.wasm', 'core/oac_core.mjs', 'core/oac_core.wasm',
      'model/card.json', 'manifest.webmanifest', 'icons/icon-192.png']) {
      assert.ok(manifest.files.includes(file), `${file} is kept offline`);
      if (file !== './') assert.ok(existsSync(path.join(DIST, file)), `${file} exists`);
    }
    assert.ok(!manifest.files.some((file) => file.endsWith('.onnx')), 'the model is cached by the worker, not twice');
    // The DICOM codecs stay out of the first visit's download and are kept once a file needs one.
    for (const file of ['codecs/jpeg-lossless.mjs', 'codecs/charls.wasm', 'codecs/openjpeg.wasm', 'codecs/openjph.wasm']) {
      assert.ok(existsSync(path.join(DIST, file)), `${file} exists`);
      assert.ok(!manifest.files.includes(file), `${file} is not precached`);
      assert.ok(manifest.keptOnFirstUse.includes(file), `${file} is kept once used`);
    }
    assert.ok(manifest.files.includes('codecs/frame_decoders.js') && manifest.files.includes('dicom_folder.js'));
  });

  it('ships the model its card describes', () => {
    const card = JSON.parse(read('model/card.json'));
    const model = readFileSync(path.join(DIST, 'model', card.model_file));
    assert.equal(model.length, card.bytes);
    assert.equal(createHash('sha256').update(model).digest('hex'), card.sha256);
    assert.equal(typeof card.untrained, 'boolean');
  });

  it('has PNG icons of the sizes the manifest names', () => {
    const manifest = JSON.parse(read('manifest.webmanifest'));
    for (const icon of manifest.icons.filter((entry) => entry.type === 'image/png')) {
      const png = readFileSync(path.join(DIST, icon.src));
      assert.equal(png.subarray(1, 4).toString('ascii'), 'PNG');
      assert.equal(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`, icon.sizes);
    }
  });
});
