import { Pool } from 'undici';
import { isRecord } from './call-arguments.js';
import { EpushClientError, invalid } from './client-error.js';

/** A Retry-After longer than this is waited for this long only (a broken header cannot stall). */
const MAX_RETRY_AFTER_MS = 60_000;
/** A node that does not take the TCP connection within this counts as unreachable. */
const MAX_CONNECT_TIMEOUT_MS = 5_000;

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** One API call, as the caller sends it to whichever node. */
export interface CallSpec {
  readonly method: Method;
  /** Below the node's base path, already encoded. */
  readonly path: string;
  readonly body?: string;
  /** Extra request headers (the notify's Idempotency-Key). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Safe to send again when the request may have reached the server. */
  readonly repeatable: boolean;
}

interface Node {
  readonly pool: Pool;
  readonly basePath: string;
}

type AttemptOutcome =
  | { readonly ok: true; readonly status: number; readonly body: unknown }
  | { readonly ok: false; readonly error: EpushClientError; readonly retry: boolean };

/** Node and undici errors raised before any byte of the request was written. */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

const TIMED_OUT = Symbol('epush-sdk-timeout');

/** Retry-After as delay-seconds or an HTTP date, in milliseconds; null when absent or bad. */
function retryAfterOf(header: string | string[] | undefined): number | null {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || value.trim() === '') return null;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

function errorCodeOf(error: unknown): string | undefined {
  if (!isRecord(error) && !(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The caller's settings, already validated by the client (URLs are checked here). */
export interface ClusterCallerSettings {
  readonly urls: readonly unknown[];
  readonly apiKey: string;
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  readonly connections: number;
}

/**
 * Sends API calls to the nodes of one cluster: one keep-alive undici Pool per origin, calls
 * started on the nodes in turn, a failed attempt moved to the next node, and the retry policy
 * (module doc of epush-client.ts): what may be sent again, with full-jitter backoff and the
 * server's Retry-After.
 */
export class ClusterCaller {
  private readonly nodes: readonly Node[];
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private nextNode = 0;
  private closed = false;

  /** Throws `invalid_argument` for a URL that is not an http(s) node URL. */
  constructor(settings: ClusterCallerSettings) {
    const { urls: list, connections } = settings;
    this.apiKey = settings.apiKey;
    this.timeoutMs = settings.timeoutMs;
    this.attempts = settings.attempts;
    this.baseDelayMs = settings.baseDelayMs;
    this.maxDelayMs = settings.maxDelayMs;
    const bases = list.map((entry) => {
      let parsed: URL;
      try {
        parsed = new URL(String(entry));
      } catch {
        throw invalid(`${JSON.stringify(entry)} is not a URL.`);
      }
      if (typeof entry !== 'string' || !['http:', 'https:'].includes(parsed.protocol)) {
        throw invalid(`${JSON.stringify(entry)} is not an http(s) URL.`);
      }
      if (
        parsed.search !== '' ||
        parsed.hash !== '' ||
        parsed.username !== '' ||
        parsed.password !== ''
      ) {
        throw invalid(
          `${JSON.stringify(entry)}: a node URL has no query, fragment or credentials.`,
        );
      }
      return { origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, '') };
    });
    // One pool per origin, shared by URLs that differ only in their path.
    const pools = new Map<string, Pool>();
    this.nodes = bases.map(({ origin, basePath }) => {
      let pool = pools.get(origin);
      if (pool === undefined) {
        pool = new Pool(origin, {
          connections,
          pipelining: 1,
          connectTimeout: Math.min(MAX_CONNECT_TIMEOUT_MS, Math.ceil(this.timeoutMs / 2)),
        });
        pools.set(origin, pool);
      }
      return { pool, basePath };
    });
  }

  /** One call with the retry policy; resolves with the parsed JSON of a 2xx answer. */
  async call(spec: CallSpec): Promise<unknown> {
    const first = this.nextNode;
    this.nextNode = (this.nextNode + 1) % this.nodes.length;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) {
        throw new EpushClientError('client_closed', 'The EpushApiClient is closed.', {
          attempts: attempt - 1,
        });
      }
      const outcome = await this.attempt(this.nodeAt(first + attempt - 1), spec);
      if (outcome.ok) return outcome.body;
      outcome.error.attempts = attempt;
      if (!outcome.retry || attempt >= this.attempts || this.isClosed()) throw outcome.error;
      await sleep(this.backoff(attempt, outcome.error.retryAfterMs));
    }
  }

  private nodeAt(index: number): Node {
    const node = this.nodes[index % this.nodes.length];
    if (node === undefined) throw new Error('unreachable: no node');
    return node;
  }

  /** Read through a method: it changes while a call awaits. */
  private isClosed(): boolean {
    return this.closed;
  }

  /** Full jitter; a larger Retry-After wins. */
  private backoff(attempt: number, retryAfterMs: number | null): number {
    const cap = Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1));
    const delay = Math.random() * cap;
    return retryAfterMs !== null && retryAfterMs > delay
      ? Math.min(retryAfterMs, MAX_RETRY_AFTER_MS)
      : delay;
  }

  private async attempt(node: Node, spec: CallSpec): Promise<AttemptOutcome> {
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort(TIMED_OUT);
    }, this.timeoutMs);
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.apiKey}`,
      accept: 'application/json',
      'user-agent': 'epush-sdk',
      ...spec.headers,
    };
    if (spec.body !== undefined) headers['content-type'] = 'application/json';
    let status: number;
    let retryAfterMs: number | null;
    let text: string;
    try {
      const response = await node.pool.request({
        method: spec.method,
        path: node.basePath + spec.path,
        headers,
        body: spec.body ?? null,
        signal: controller.signal,
      });
      status = response.statusCode;
      retryAfterMs = retryAfterOf(response.headers['retry-after']);
      text = await response.body.text();
    } catch (error) {
      return this.failure(spec, error);
    } finally {
      clearTimeout(timer);
    }

    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (status >= 200 && status < 300) return { ok: true, status, body };

    const served = isRecord(body) && isRecord(body.error) ? body.error : undefined;
    const error =
      served !== undefined && typeof served.code === 'string'
        ? new EpushClientError(
            served.code,
            typeof served.message === 'string' ? served.message : `HTTP ${status}`,
            { status, retryAfterMs },
          )
        : new EpushClientError(
            'unexpected_response',
            `${spec.method} ${spec.path} answered HTTP ${status} without an epush error body.`,
            { status, retryAfterMs },
          );
    // 503 (backplane unavailable, draining) and 429 (rate limited): the server did not act. A
    // balancer's 502 / 504: the node may have acted, so only what is safe to repeat is retried.
    const retry =
      status === 503 || status === 429 || (spec.repeatable && (status === 502 || status === 504));
    return { ok: false, error, retry };
  }

  private failure(spec: CallSpec, error: unknown): AttemptOutcome {
    if (error === TIMED_OUT) {
      return {
        ok: false,
        error: new EpushClientError(
          'timeout',
          `${spec.method} ${spec.path} got no complete answer within ${this.timeoutMs} ms.`,
        ),
        retry: spec.repeatable,
      };
    }
    const code = errorCodeOf(error);
    if (this.closed || code === 'UND_ERR_DESTROYED' || code === 'UND_ERR_CLOSED') {
      return {
        ok: false,
        error: new EpushClientError('client_closed', 'The EpushApiClient is closed.', {
          cause: error,
        }),
        retry: false,
      };
    }
    const notSent = code !== undefined && NOT_SENT_CODES.has(code);
    return {
      ok: false,
      error: new EpushClientError(
        'network_error',
        `${spec.method} ${spec.path}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      ),
      retry: notSent || spec.repeatable,
    };
  }

  /** Closes the connection pools once the calls in flight have finished. Later calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [...new Set(this.nodes.map((node) => node.pool))].map((pool) => pool.close()),
    );
  }
}
