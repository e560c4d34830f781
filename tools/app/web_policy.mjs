// The one definition of the web app's security headers. The static server sends them, and the
// build writes them into the page's <meta> tag and into the service worker, which adds them to
// every response it serves (so static hosts without header control still get isolation + CSP).

// Only the app's own origin; 'wasm-unsafe-eval' lets WebAssembly compile without allowing eval().
const POLICY_DIRECTIVES = [
  "default-src 'self'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "worker-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "style-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'self'",
  "form-action 'none'",
];

// Browsers ignore frame-ancestors in a <meta> policy (and warn about it), so it is header-only.
const HEADER_ONLY_DIRECTIVES = ["frame-ancestors 'none'"];

export const META_CONTENT_SECURITY_POLICY = POLICY_DIRECTIVES.join('; ');
export const CONTENT_SECURITY_POLICY = [...POLICY_DIRECTIVES, ...HEADER_ONLY_DIRECTIVES].join('; ');

// COOP + COEP make the page cross-origin isolated, which unlocks SharedArrayBuffer and therefore
// multi-threaded WebAssembly.
export const ISOLATION_HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export const SECURITY_HEADERS = {
  ...ISOLATION_HEADERS,
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};
