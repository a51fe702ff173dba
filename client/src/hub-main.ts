/**
 * The hub frame's script (`/epush-hub.js`, loaded by `/epush-hub.html` on the push server's
 * origin). The server writes the allowed page origins (`--cors-origins`) into the page as
 * `<html data-epush-origins='["https://a.example.com", …]'>` (or `"*"`): no inline script, so
 * the hub page's CSP can forbid every script but this one.
 */
import { EPushClient } from './client.js';
import { Hub, hubClientOptions, type HubMessageEvent, type HubParent } from './hub.js';

/** The allowed origins the server wrote into the page; none (nobody) when unreadable. */
export function readAllowedOrigins(attribute: string | undefined): '*' | string[] {
  if (attribute === undefined) return [];
  try {
    const value: unknown = JSON.parse(attribute);
    if (value === '*') return '*';
    if (Array.isArray(value)) return value.filter((item) => typeof item === 'string');
  } catch {
    // nobody
  }
  return [];
}

/** The push server's base URL: where this page is, without `/epush-hub.html`. */
export function hubBaseUrl(href: string): string {
  const url = new URL('.', href);
  return url.href.replace(/\/+$/, '');
}

function start(): void {
  if (typeof window === 'undefined' || window.parent === window) return; // not in a frame
  const parent: HubParent = {
    postMessage(message, targetOrigin) {
      window.parent.postMessage(message, targetOrigin);
    },
  };
  const baseUrl = hubBaseUrl(window.location.href);
  new Hub({
    allowedOrigins: readAllowedOrigins(document.documentElement.dataset.epushOrigins),
    parent,
    listenForMessages(listener) {
      window.addEventListener('message', (event: MessageEvent) => {
        // The parent's window stands for the page: compare it, not the wrapper above.
        const source = event.source === window.parent ? parent : event.source;
        const hubEvent: HubMessageEvent = { data: event.data, origin: event.origin, source };
        listener(hubEvent);
      });
    },
    createClient(hello) {
      return new EPushClient({ ...hubClientOptions(hello), url: baseUrl });
    },
    clock: {
      now: () => Date.now(),
      setTimeout: (callback, ms) => window.setTimeout(callback, ms),
      clearTimeout: (handle) => {
        if (typeof handle === 'number') window.clearTimeout(handle);
      },
    },
    logger: console,
  });
}

start();
