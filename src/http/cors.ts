import type { IncomingMessage } from 'node:http';
import type { Headers } from './respond.js';

/** Lets the browser client read the back-off hint of a 503/429 across origins. */
const EXPOSED = { 'access-control-expose-headers': 'Retry-After' } as const;

/** CORS for the browser endpoints (`/push/*`); the application API is server to server. */
export class CorsPolicy {
  private readonly any: boolean;
  private readonly allowed: Set<string>;

  constructor(origins: readonly string[]) {
    this.any = origins.includes('*');
    this.allowed = new Set(origins.filter((origin) => origin !== '*'));
  }

  /** Headers for an answer to `req`; empty when the origin is not allowed (the browser blocks). */
  headersFor(req: IncomingMessage): Headers {
    return this.headersForOrigin(req.headers.origin);
  }

  /** What {@link headersForOrigin} depends on: one key per distinct set of headers. */
  headersKey(origin: string | undefined): string {
    if (this.any) return '*';
    return origin !== undefined && this.allowed.has(origin) ? origin : '';
  }

  /** Same as {@link headersFor}, from the request's Origin header value. */
  headersForOrigin(origin: string | undefined): Headers {
    if (this.any) return { 'access-control-allow-origin': '*', ...EXPOSED };
    if (origin !== undefined && this.allowed.has(origin)) {
      return { 'access-control-allow-origin': origin, vary: 'Origin', ...EXPOSED };
    }
    return { vary: 'Origin' };
  }

  /**
   * Whether this request's page may listen (WebSocket, SSE, long-poll): the allowlist is enforced
   * on the server, not only by the browser; requests without an Origin (not a browser) pass.
   */
  allows(req: IncomingMessage): boolean {
    return this.allowsOrigin(req.headers.origin, req.headers.host);
  }

  /**
   * Whether a request with this Origin may use the browser endpoints at all. A listen from a
   * page of another origin would be served even though its browser hides the answer, and would
   * replace the real page's listen: it is refused instead (403 `forbidden_origin`). Pages of
   * the server's own host (`host`: the Host header) always may: the hub frame
   * (`/epush-hub.html`) listens from there for the pages of every allowed origin.
   */
  allowsOrigin(origin: string | undefined, host?: string): boolean {
    return this.any || origin === undefined || this.allowed.has(origin) || sameHost(origin, host);
  }

  /** Headers for a preflight (`OPTIONS`), cached by the browser for 10 minutes. */
  preflightHeaders(req: IncomingMessage): Headers {
    return {
      ...this.headersFor(req),
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': 'Content-Type, Last-Event-ID',
      'access-control-max-age': 600,
    };
  }
}

/**
 * Whether `origin` is the host the request was sent to: host and port when the Host header
 * names a port, else the host name (a proxy such as nginx's `Host $host` drops the port).
 */
function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined || host === '') return false;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  const wanted = host.toLowerCase();
  return /:\d+$/.test(wanted) ? url.host === wanted : url.hostname === wanted;
}
