// The built app in a browser, for the end-to-end tests and the benchmark alike: the app served on a free
// loopback port under a sub-path, a fresh headless Chromium (Debian's, never a downloaded one) with a
// record of every request, and the memory of the renderers it started.

import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { WEB_DIST } from '../lib/paths.mjs';
import { startServer } from './serve.mjs';

export const DIST = path.resolve(process.env.OAC_WEB_DIST ?? WEB_DIST);
export const CHROMIUM = process.env.OAC_CHROMIUM ?? '/usr/bin/chromium';
export const APP_PREFIX = '/knee-oa/app/';
// Limit for anything that loads the model or classifies. Development machines share two cores with
// training jobs, where one classification can take tens of seconds; a limit only has to catch a hang,
// so it is generous (OAC_E2E_TIMEOUT_MS overrides it).
export const SLOW_MS = Number(process.env.OAC_E2E_TIMEOUT_MS ?? 600_000);

/**
 * Serves `root` on a free loopback port; `requests` collects what the server saw. plainHost: no
 * security headers, like a static host without header control.
 */
export async function serveApp({ root = DIST, prefix = APP_PREFIX, plainHost = false } = {}) {
  const requests = [];
  const server = await startServer({ root, port: 0, prefix, plainHost, onRequest: (request) => requests.push(request) });
  return { ...server, origin: new URL(server.url).origin, requests };
}

/**
 * A fresh headless Chromium profile. Every request the browser makes (page, workers and the
 * service worker) lands in `requests`.
 */
export async function launchBrowser({ viewport = { width: 1280, height: 900 } } = {}) {
  // Lets Playwright report the service worker's own network requests too.
  process.env.PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS = '1';
  const userDataDir = mkdtempSync(path.join(tmpdir(), 'oac-e2e-profile-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport,
    acceptDownloads: true,
    args: ['--no-sandbox', '--headless', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-gpu'],
  });
  context.setDefaultTimeout(SLOW_MS);
  const requests = [];
  const problems = [];
  context.on('request', (request) => requests.push({
    url: request.url(),
    method: request.method(),
    postData: request.postDataBuffer(),
  }));
  const page = context.pages()[0] ?? await context.newPage();
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('crash', () => problems.push('page crashed'));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  return {
    context,
    page,
    requests,
    problems,
    close: async () => {
      await context.close();
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
}

/** Peak and current resident memory (MiB) of each Chromium renderer started by this process (Linux /proc). */
export async function rendererMemory() {
  const children = new Map();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const status = await readFile(`/proc/${entry}/status`, 'utf8').catch(() => '');
    const parent = status.match(/^PPid:\s+(\d+)/m)?.[1];
    if (parent) children.set(entry, { parent, status });
  }
  const descends = (pid) => {
    for (let current = pid; current && current !== '1'; current = children.get(current)?.parent) {
      if (current === String(process.pid)) return true;
    }
    return false;
  };
  const renderers = [];
  for (const [pid, { status }] of children) {
    if (!descends(pid)) continue;
    const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!commandLine.includes('--type=renderer')) continue;
    const kib = (field) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'))?.[1] ?? 0);
    renderers.push({ pid: Number(pid), peakMiB: kib('VmHWM') / 1024, residentMiB: kib('VmRSS') / 1024 });
  }
  return renderers.sort((a, b) => b.peakMiB - a.peakMiB);
}
