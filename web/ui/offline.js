// The service worker (../sw.js): offline use, cross-origin isolation on plain static hosts, and the prompt that
// offers a new version.

const ISOLATION_RELOAD_KEY = 'oac-isolation-reload';
const updateBanner = document.querySelector('#update-banner');
const updateReload = document.querySelector('#update-reload');

/** Registers the service worker; an isolated page first waits for `modelSettled` (the model loaded or failed). */
export async function registerServiceWorker(modelSettled) {
  if (!('serviceWorker' in navigator)) return;
  const hadController = Boolean(navigator.serviceWorker.controller);
  if (self.crossOriginIsolated) sessionStorage.removeItem(ISOLATION_RELOAD_KEY);
  let updateAccepted = false;

  navigator.serviceWorker.addEventListener('controllerchange', () => {
    // Reload when the user accepted an update, or once on a first visit to a host that does not
    // send COOP/COEP itself: the service worker adds them, making the reloaded page isolated.
    const needsIsolation = !hadController && !self.crossOriginIsolated && !sessionStorage.getItem(ISOLATION_RELOAD_KEY);
    if (needsIsolation) sessionStorage.setItem(ISOLATION_RELOAD_KEY, '1');
    if (updateAccepted || needsIsolation) window.location.reload();
  });

  // Installing downloads the app again into the offline cache. On a first visit that would compete
  // with loading the model, so an isolated page waits for the model; a page that is not isolated
  // registers at once, because only a reload under the worker's headers gives it threads.
  if (self.crossOriginIsolated) await modelSettled;
  let registration;
  try {
    registration = await navigator.serviceWorker.register('sw.js');
  } catch {
    return; // Works without offline support, e.g. in private windows that forbid service workers.
  }
  const offerUpdate = (waiting) => {
    updateBanner.hidden = false;
    updateReload.onclick = () => {
      updateAccepted = true;
      waiting.postMessage({ type: 'skip-waiting' });
    };
  };
  if (registration.waiting && navigator.serviceWorker.controller) offerUpdate(registration.waiting);
  registration.addEventListener('updatefound', () => {
    const installing = registration.installing;
    installing?.addEventListener('statechange', () => {
      if (installing.state === 'installed' && navigator.serviceWorker.controller) offerUpdate(installing);
    });
  });
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') registration.update().catch(() => {});
  });
}
