#!/usr/bin/env node
// A small static server for trying the web app on this machine (loopback only). It sends the
// headers a production host should send: COOP/COEP (cross-origin isolation → threaded WASM), the
// CSP, and correct MIME types. It can serve the app under a sub-path to prove all URLs are relative,
// and can leave the security headers out to behave like a static host without header control.
//
//   node tools/app/serve.mjs [--port P] [--root DIR] [--prefix /sub/path/] [--plain-host]

import { createServer } from 'node:http';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { commandLineOrExit, wholeNumber } from '../lib/command_line.mjs';
import { WEB_DIST } from '../lib/paths.mjs';
import { SECURITY_HEADERS } from './web_policy.mjs';

const DEFAULT_PORT = 8080;

const MIME_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
};

/** Normalises a URL prefix to the form "/a/b/" ("/" for none). */
export function normalisePrefix(prefix) {
  const trimmed = (prefix ?? '/').replace(/^\/+|\/+$/g, '');
  return trimmed ? `/${trimmed}/` : '/';
}

/**
 * Starts the server. Resolves to { url, port, close() } once it listens.
 * onRequest({ method, path, headers, bodyBytes }) sees every request (tests record them).
 * plainHost: send no security headers, like a static host that cannot set any.
 */
export async function startServer({ root = WEB_DIST, port = DEFAULT_PORT, host = '127.0.0.1',
  prefix = '/', onRequest = null, plainHost = false } = {}) {
  const rootDir = path.resolve(root);
  const urlPrefix = normalisePrefix(prefix);
  const headers = plainHost ? {} : SECURITY_HEADERS;

  const server = createServer((request, response) => {
    let bodyBytes = 0;
    request.on('data', (chunk) => { bodyBytes += chunk.length; });
    request.on('end', () => {
      onRequest?.({ method: request.method, path: request.url, headers: request.headers, bodyBytes });
      respond(request, response, rootDir, urlPrefix, headers).catch((error) => {
        if (!response.headersSent) sendText(response, headers, 500, `Internal error: ${error.message}`);
        else response.destroy();
      });
    });
  });
  // Keep-alive sockets would otherwise hold close() open until the browser lets go of them.
  const sockets = new Set();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const actualPort = server.address().port;
  return {
    port: actualPort,
    url: `http://${host}:${actualPort}${urlPrefix}`,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

async function respond(request, response, rootDir, urlPrefix, headers) {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    sendText(response, headers, 405, 'Only GET and HEAD are supported.');
    return;
  }
  let pathname;
  try {
    pathname = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
  } catch {
    sendText(response, headers, 400, 'Malformed URL.');
    return;
  }
  if (`${pathname}/` === urlPrefix) {
    response.writeHead(301, { ...headers, Location: urlPrefix });
    response.end();
    return;
  }
  if (!pathname.startsWith(urlPrefix) || pathname.includes('\0')) {
    sendText(response, headers, 404, 'Not found.');
    return;
  }
  let filePath = path.resolve(rootDir, `.${pathname.slice(urlPrefix.length - 1)}`);
  if (filePath !== rootDir && !filePath.startsWith(rootDir + path.sep)) {
    sendText(response, headers, 404, 'Not found.');
    return;
  }
  let info = await stat(filePath).catch(() => null);
  if (info?.isDirectory()) {
    filePath = path.join(filePath, 'index.html');
    info = await stat(filePath).catch(() => null);
  }
  if (!info?.isFile()) {
    sendText(response, headers, 404, 'Not found.');
    return;
  }
  response.writeHead(200, {
    ...headers,
    'Content-Type': MIME_TYPES[path.extname(filePath).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
    // Always revalidate: the service worker owns offline caching, not the HTTP cache.
    'Cache-Control': 'no-cache',
  });
  if (request.method === 'HEAD') {
    response.end();
    return;
  }
  createReadStream(filePath).on('error', () => response.destroy()).pipe(response);
}

function sendText(response, headers, status, text) {
  response.writeHead(status, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(`${text}\n`);
}

const USAGE = 'usage: node tools/app/serve.mjs [--port P] [--root DIR] [--prefix /sub/path/] [--plain-host]\n'
  + `  Serves DIR (default web/dist) on http://127.0.0.1:P (default ${DEFAULT_PORT}) with COOP/COEP + CSP.\n`
  + '  --plain-host leaves those headers out, like a static host without header control.\n';

const OPTIONS = {
  port: { type: 'string', default: String(DEFAULT_PORT) },
  root: { type: 'string', default: WEB_DIST },
  prefix: { type: 'string', default: '/' },
  'plain-host': { type: 'boolean', default: false },
};

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const options = commandLineOrExit('serve', USAGE, { options: OPTIONS }, ({ values }) => ({
    port: wholeNumber('--port', values.port, { least: 0, most: 65535 }),
    root: path.resolve(values.root),
    prefix: values.prefix,
    plainHost: values['plain-host'],
  }));
  const info = await stat(options.root).catch(() => null);
  if (!info?.isDirectory()) {
    process.stderr.write(`serve: ${options.root} is not a folder (build it first: node tools/app/build_web.mjs)\n`);
    process.exit(1);
  }
  const { url } = await startServer(options).catch((error) => {
    process.stderr.write(`serve: cannot listen on port ${options.port}: ${error.message}\n`);
    process.exit(1);
  });
  process.stdout.write(`Serving ${options.root} at ${url}\n`);
}
