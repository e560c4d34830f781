// Service worker: keeps the app shell, the core and ONNX Runtime's WebAssembly on this device for
// offline use, and adds the security headers (COOP/COEP for cross-origin isolation, the CSP) to
// every response it serves, so static hosts that cannot set headers still get a threaded,
// locked-down app. The model itself is cached and verified by worker.js (cache "oac-model"). The DICOM codecs
// are not fetched at install, so the first visit downloads no more than before: each is kept in the shell
// cache when a file first needs it, and from then on works offline.
//
// tools/app/build_web.mjs replaces the BUILD value below: the build version (a content hash), the files
// to keep offline, those kept on first use, and the headers from tools/app/web_policy.mjs.

const BUILD = /* BUILD_MANIFEST */ { version: 'unbuilt', files: [], keptOnFirstUse: [], headers: {} };

const SHELL_CACHE_PREFIX = 'oac-shell-';
const SHELL_CACHE = `${SHELL_CACHE_PREFIX}${BUILD.version}`;

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(SHELL_CACHE);
    // 'reload' bypasses the HTTP cache so a new version never stores stale files.
    await cache.addAll(BUILD.files.map((file) => new Request(file, { cache: 'reload' })));
  })());
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((name) => name.startsWith(SHELL_CACHE_PREFIX) && name !== SHELL_CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

// The page asks a waiting new version to take over once the user agrees (update prompt).
self.addEventListener('message', (event) => {
  if (event.data?.type === 'skip-waiting') self.skipWaiting();
});

function withSecurityHeaders(response) {
  if (response.type === 'opaque' || response.status === 0) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(BUILD.headers)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

function isKeptOnFirstUse(url) {
  return BUILD.keptOnFirstUse.some((file) => new URL(file, self.registration.scope).href === url.split('?')[0]);
}

async function respond(request) {
  const cache = await caches.open(SHELL_CACHE);
  let response = await cache.match(request, { ignoreSearch: true });
  if (!response && request.mode === 'navigate') {
    response = await cache.match(new URL('./', self.registration.scope).href);
  }
  if (!response) {
    // Not part of the shell (e.g. the model, which worker.js verifies and caches itself): network.
    response = await fetch(request);
    if (response.ok && isKeptOnFirstUse(request.url)) await cache.put(request, response.clone());
  }
  return withSecurityHeaders(response);
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (request.method !== 'GET' || new URL(request.url).origin !== self.location.origin) return;
  event.respondWith(respond(request));
});
