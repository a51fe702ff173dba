/**
 * The Node SDK for applications that talk to a remote epush cluster over the application API
 * (SPEC §3). It keeps one keep-alive undici Pool per node, validates arguments locally with the
 * server's rules, and retries only what is safe to retry (docs/sdk.md has the table):
 *
 * - 503 and 429 are retried for every call: the server answered that it did not do the work.
 * - A failure before the request left this process (connection refused, DNS failure, connect
 *   timeout) is retried for every call: the server never saw it.
 * - Any other network failure or a timeout is retried only for calls that can safely run twice:
 *   PUT / DELETE / GET, and createPushIds (a lost answer only wastes fresh push IDs, which
 *   expire unheld after the server's push-id-ttl). A notify is NOT retried then: the server may
 *   already have published it, and a second publish would be delivered twice under a new id.
 *
 * This module imports only pure validators and types from src/core: no server I/O.
 */
import { Pool } from 'undici';
import type { NodeInfo } from '../backplane/backplane.js';
import type { ErrorCode } from '../core/errors.js';
import type { NotificationId } from '../core/events.js';
import { isGroupName, type GroupName } from '../core/group-name.js';
import {
  MAX_LISTEN_TOKEN_TTL_SECONDS,
  MAX_PAYLOAD_BYTES,
  MAX_PUSH_IDS_PER_CALL,
} from '../core/limits.js';
import { isPushId, type PushId } from '../core/push-id.js';

export type { GroupName, NodeInfo, NotificationId, PushId };
export { MAX_LISTEN_TOKEN_TTL_SECONDS, MAX_PAYLOAD_BYTES, MAX_PUSH_IDS_PER_CALL };

/** A Retry-After longer than this is waited for this long only (a broken header cannot stall). */
const MAX_RETRY_AFTER_MS = 60_000;
/** A node that does not take the TCP connection within this counts as unreachable. */
const MAX_CONNECT_TIMEOUT_MS = 5_000;

/** Codes the SDK itself reports, besides the server's catalogue. */
export type EpushClientLocalCode =
  /** An argument or option broke the server's rules; nothing was sent. */
  | 'invalid_argument'
  /** The connection failed or broke before a complete answer arrived. */
  | 'network_error'
  /** No complete answer within `timeoutMs`. */
  | 'timeout'
  /** The answer was not what SPEC §3 says (not JSON, wrong shape, an error without a code). */
  | 'unexpected_response'
  /** The client was closed. */
  | 'client_closed';

/** The server's codes (src/core/errors.ts), the SDK's own, or a code a newer server added. */
export type EpushClientErrorCode =
  ErrorCode | EpushClientLocalCode | (string & Record<never, never>);

/** Every failure of an EpushClient call. */
export class EpushClientError extends Error {
  /** The HTTP status of the last answer; null when no answer came (local, network, timeout). */
  readonly status: number | null;
  /** The server's snake_case code, or one of {@link EpushClientLocalCode}. */
  readonly code: EpushClientErrorCode;
  /** The server's Retry-After of the last answer in milliseconds; null when it sent none. */
  readonly retryAfterMs: number | null;
  /** Requests sent (or tried) for this call; 0 when it failed validation. */
  attempts: number;

  constructor(
    code: EpushClientErrorCode,
    message: string,
    details: {
      readonly status?: number | null;
      readonly retryAfterMs?: number | null;
      readonly attempts?: number;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'EpushClientError';
    this.code = code;
    this.status = details.status ?? null;
    this.retryAfterMs = details.retryAfterMs ?? null;
    this.attempts = details.attempts ?? 0;
  }
}

export interface EpushRetryOptions {
  /** Attempts per call, the first included (1 = never retry). Default 5. */
  readonly attempts?: number;
  /** Backoff before retry k is a random 0..min(maxDelayMs, baseDelayMs·2^(k-1)). Default 100. */
  readonly baseDelayMs?: number;
  /** Default 2000. A larger Retry-After from the server wins (up to 60 s). */
  readonly maxDelayMs?: number;
}

interface CommonOptions {
  /** The bearer key (one of the server's `--api-key` values). */
  readonly apiKey: string;
  /** Per attempt: connect, send and read the whole answer. Default 10 000. */
  readonly timeoutMs?: number;
  readonly retries?: EpushRetryOptions;
  /** Most keep-alive connections per node. Default 16. */
  readonly connections?: number;
}

export type EpushClientOptions = CommonOptions &
  (
    | {
        /** One node (or a load balancer), e.g. `http://push.internal:8080`. */
        readonly url: string;
        readonly urls?: never;
      }
    | {
        /** Several nodes: calls start on them in turn, and a failed attempt moves to the next. */
        readonly urls: readonly string[];
        readonly url?: never;
      }
  );

/** @deprecated The same type as {@link NodeInfo}, the one name for a cluster node. */
export type EpushClusterNode = NodeInfo;

/** What {@link EpushClient.createPushIdsWithTokens} resolves with. */
export interface PushIdsWithTokens {
  readonly pushIds: PushId[];
  /** `listenTokens[i]` lets a browser listen on `pushIds[i]`; null when the server mints none. */
  readonly listenTokens: string[] | null;
}

/** What {@link EpushClient.listenTokens} resolves with. */
export interface ListenTokensResult {
  /** One per push ID asked for, same order; sent by the browser client with each listen. */
  readonly listenTokens: string[];
  /** ISO 8601: when every token of the call expires. */
  readonly expiresAt: string;
}

export interface NotifyResult {
  readonly id: NotificationId;
}

export type NotifyItem =
  | { readonly group: string; readonly pushId?: never; readonly payload?: unknown }
  | { readonly pushId: string; readonly group?: never; readonly payload?: unknown };

export type NotifyManyResult =
  | { readonly ok: true; readonly id: NotificationId }
  | { readonly ok: false; readonly error: EpushClientError };

export interface NotifyManyOptions {
  /** Requests in flight at once. Default 32. */
  readonly concurrency?: number;
}

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

interface CallSpec {
  readonly method: Method;
  /** Below the node's base path, already encoded. */
  readonly path: string;
  readonly body?: string;
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

function invalid(message: string): EpushClientError {
  return new EpushClientError('invalid_argument', message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function positiveInteger(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalid(`${what} must be an integer of at least 1.`);
  }
  return value;
}

function nonNegative(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(`${what} must be a finite number of at least 0.`);
  }
  return value;
}

function groupArg(value: unknown): GroupName {
  if (!isGroupName(value)) {
    throw invalid('Group names are 1-200 characters of letters, digits and . _ : ~ -');
  }
  return value;
}

function pushIdArg(value: unknown): PushId {
  if (!isPushId(value)) {
    throw invalid('Push IDs are 16-64 characters of letters, digits, _ and -.');
  }
  return value;
}

/** JSON.stringify answers undefined for a function or a symbol, whatever lib.d.ts says. */
const stringify: (value: unknown) => string | undefined = JSON.stringify;

/** The notify body for `payload` (undefined: no body, the server stores a null payload). */
function notifyBody(payload: unknown): string | undefined {
  if (payload === undefined) return undefined;
  let json: string | undefined;
  try {
    json = stringify(payload);
  } catch (error) {
    throw new EpushClientError(
      'invalid_argument',
      `The payload cannot be serialized as JSON (${(error as Error).message}).`,
      { cause: error },
    );
  }
  if (json === undefined) {
    throw invalid('The payload is not a JSON value (a function, a symbol or undefined).');
  }
  if (Buffer.byteLength(json) > MAX_PAYLOAD_BYTES) {
    throw invalid(`The payload is larger than ${MAX_PAYLOAD_BYTES} bytes once serialized.`);
  }
  return `{"payload":${json}}`;
}

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

/**
 * A client of one epush cluster. Every method validates its arguments first and throws an
 * {@link EpushClientError} with code `invalid_argument` before sending anything.
 */
export class EpushClient {
  private readonly nodes: readonly Node[];
  private readonly apiKey: string;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private nextNode = 0;
  private closed = false;

  constructor(options: EpushClientOptions) {
    const raw: unknown = options;
    if (!isRecord(raw)) throw invalid('EpushClient needs an options object.');
    const { url, urls } = options as { url?: unknown; urls?: unknown };
    if ((url === undefined) === (urls === undefined)) {
      throw invalid('Give exactly one of "url" and "urls".');
    }
    const list: unknown[] = urls === undefined ? [url] : Array.isArray(urls) ? urls : [];
    if (list.length === 0) throw invalid('"urls" must be a non-empty array of URLs.');

    if (typeof options.apiKey !== 'string' || !/^[\x21-\x7e]+$/.test(options.apiKey)) {
      throw invalid('"apiKey" must be a non-empty string of printable ASCII without spaces.');
    }
    this.apiKey = options.apiKey;
    this.timeoutMs = positiveInteger(options.timeoutMs, 10_000, '"timeoutMs"');
    const retries: unknown = options.retries ?? {};
    if (!isRecord(retries)) throw invalid('"retries" must be an object.');
    this.attempts = positiveInteger(retries.attempts, 5, '"retries.attempts"');
    this.baseDelayMs = nonNegative(retries.baseDelayMs, 100, '"retries.baseDelayMs"');
    this.maxDelayMs = nonNegative(retries.maxDelayMs, 2_000, '"retries.maxDelayMs"');
    const connections = positiveInteger(options.connections, 16, '"connections"');

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

  /** `POST /api/push-ids`: mints `count` (1..1000, default 1) fresh push IDs. */
  async createPushIds(count = 1): Promise<PushId[]> {
    return (await this.createPushIdsWithTokens(count)).pushIds;
  }

  /**
   * `POST /api/push-ids`, with the listen tokens the server mints alongside when it has a
   * `--listen-token-secret` (`listenTokens[i]` is the token of `pushIds[i]`); `listenTokens` is
   * null when the server sends none (tokens are off there). Retried on any failure.
   */
  async createPushIdsWithTokens(count = 1): Promise<PushIdsWithTokens> {
    if (!Number.isInteger(count) || count < 1 || count > MAX_PUSH_IDS_PER_CALL) {
      throw invalid(`"count" must be an integer from 1 to ${MAX_PUSH_IDS_PER_CALL}.`);
    }
    // Retried on any failure: a lost answer only wastes ids, which expire unheld.
    const body = await this.call({
      method: 'POST',
      path: '/api/push-ids',
      body: JSON.stringify({ count }),
      repeatable: true,
    });
    const pushIds = isRecord(body) ? body.pushIds : undefined;
    if (!Array.isArray(pushIds) || !pushIds.every(isPushId)) {
      throw unexpected('POST /api/push-ids did not answer {"pushIds": [...]}.');
    }
    const tokens = isRecord(body) ? body.listenTokens : undefined;
    if (tokens === undefined) return { pushIds, listenTokens: null };
    if (!isTokenList(tokens, pushIds.length)) {
      throw unexpected('POST /api/push-ids answered "listenTokens" that do not match "pushIds".');
    }
    return { pushIds, listenTokens: tokens };
  }

  /**
   * `POST /api/listen-tokens`: fresh listen tokens for `pushIds` (1..1000), valid for
   * `ttlSeconds` (default: the server's `--listen-token-ttl`), for pages that outlive a token.
   * Fails with code `not_found` (404) when the server has no `--listen-token-secret`. Retried on
   * any failure: minting changes nothing on the server.
   */
  async listenTokens(pushIds: readonly string[], ttlSeconds?: number): Promise<ListenTokensResult> {
    if (!Array.isArray(pushIds) || pushIds.length < 1 || pushIds.length > MAX_PUSH_IDS_PER_CALL) {
      throw invalid(`"pushIds" must be an array of 1 to ${MAX_PUSH_IDS_PER_CALL} push IDs.`);
    }
    for (const pushId of pushIds) pushIdArg(pushId);
    if (
      ttlSeconds !== undefined &&
      (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_LISTEN_TOKEN_TTL_SECONDS)
    ) {
      throw invalid(`"ttlSeconds" must be an integer from 1 to ${MAX_LISTEN_TOKEN_TTL_SECONDS}.`);
    }
    const body = await this.call({
      method: 'POST',
      path: '/api/listen-tokens',
      body: JSON.stringify(ttlSeconds === undefined ? { pushIds } : { pushIds, ttlSeconds }),
      repeatable: true,
    });
    const tokens = isRecord(body) ? body.listenTokens : undefined;
    const expiresAt = isRecord(body) ? body.expiresAt : undefined;
    if (!isTokenList(tokens, pushIds.length) || typeof expiresAt !== 'string') {
      throw unexpected(
        'POST /api/listen-tokens did not answer {"listenTokens": [...], "expiresAt"}.',
      );
    }
    return { listenTokens: tokens, expiresAt };
  }

  /** `PUT /api/groups/{group}/members/{pushId}` (idempotent). */
  async addMember(group: string, pushId: string): Promise<void> {
    await this.call({ method: 'PUT', path: memberPath(group, pushId), repeatable: true });
  }

  /** `DELETE /api/groups/{group}/members/{pushId}` (idempotent). */
  async removeMember(group: string, pushId: string): Promise<void> {
    await this.call({ method: 'DELETE', path: memberPath(group, pushId), repeatable: true });
  }

  /** `GET /api/groups/{group}/members`. */
  async members(group: string): Promise<PushId[]> {
    const path = `/api/groups/${encodeURIComponent(groupArg(group))}/members`;
    const body = await this.call({ method: 'GET', path, repeatable: true });
    const members = isRecord(body) ? body.members : undefined;
    if (!Array.isArray(members) || !members.every(isPushId)) {
      throw unexpected(`GET ${path} did not answer {"members": [...]}.`);
    }
    return members;
  }

  /**
   * `POST /api/groups/{group}/notify`. NOT idempotent: retried on 503 / 429 and when the
   * connection failed before the request was sent, never once the server may have received it
   * (a broken connection or a timeout then fails the call with `network_error` / `timeout`;
   * retrying could deliver the notification twice).
   */
  async notifyGroup(group: string, payload?: unknown): Promise<NotifyResult> {
    const path = `/api/groups/${encodeURIComponent(groupArg(group))}/notify`;
    return this.notify(path, notifyBody(payload));
  }

  /** `POST /api/push-ids/{pushId}/notify`. Retried like {@link notifyGroup}: never twice. */
  async notifyPushId(pushId: string, payload?: unknown): Promise<NotifyResult> {
    const path = `/api/push-ids/${pushIdArg(pushId)}/notify`;
    return this.notify(path, notifyBody(payload));
  }

  /**
   * Sends many notifications, `concurrency` at a time. Resolves with one result per item, in
   * input order; an invalid item or a failed request is a `{ ok: false, error }` entry, never a
   * throw. Each item is retried like {@link notifyGroup}.
   */
  async notifyMany(
    items: readonly NotifyItem[],
    options: NotifyManyOptions = {},
  ): Promise<NotifyManyResult[]> {
    if (!Array.isArray(items)) throw invalid('notifyMany takes an array of items.');
    const concurrency = positiveInteger(
      (options as { concurrency?: unknown }).concurrency,
      32,
      '"concurrency"',
    );
    const results = new Array<NotifyManyResult>(items.length);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const index = next++;
        results[index] = await this.notifyOne(items[index]);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    return results;
  }

  /** `GET /api/cluster`: the nodes of the cluster. */
  async cluster(): Promise<NodeInfo[]> {
    const body = await this.call({ method: 'GET', path: '/api/cluster', repeatable: true });
    const nodes = isRecord(body) ? body.nodes : undefined;
    if (
      !Array.isArray(nodes) ||
      !nodes.every((node) => isRecord(node) && typeof node.id === 'string')
    ) {
      throw unexpected('GET /api/cluster did not answer {"nodes": [...]}.');
    }
    return nodes as NodeInfo[];
  }

  /** Closes the connection pools once the calls in flight have finished. Later calls fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [...new Set(this.nodes.map((node) => node.pool))].map((pool) => pool.close()),
    );
  }

  // --- internals -----------------------------------------------------------------------------

  private async notify(path: string, body: string | undefined): Promise<NotifyResult> {
    const answer = await this.call({
      method: 'POST',
      path,
      ...(body === undefined ? {} : { body }),
      repeatable: false,
    });
    const id = isRecord(answer) ? answer.id : undefined;
    if (typeof id !== 'string' || id === '') {
      throw unexpected(`POST ${path} did not answer {"id": "..."}.`);
    }
    return { id: id as NotificationId };
  }

  private async notifyOne(item: unknown): Promise<NotifyManyResult> {
    try {
      if (!isRecord(item)) throw invalid('A notifyMany item is an object.');
      const hasGroup = item.group !== undefined;
      if (hasGroup === (item.pushId !== undefined)) {
        throw invalid('A notifyMany item has exactly one of "group" and "pushId".');
      }
      const { id } = hasGroup
        ? await this.notifyGroup(item.group as string, item.payload)
        : await this.notifyPushId(item.pushId as string, item.payload);
      return { ok: true, id };
    } catch (error) {
      return {
        ok: false,
        error:
          error instanceof EpushClientError
            ? error
            : new EpushClientError('network_error', String(error), { cause: error }),
      };
    }
  }

  /** One call with the retry policy; resolves with the parsed JSON of a 2xx answer. */
  private async call(spec: CallSpec): Promise<unknown> {
    const first = this.nextNode;
    this.nextNode = (this.nextNode + 1) % this.nodes.length;
    for (let attempt = 1; ; attempt++) {
      if (this.closed) {
        throw new EpushClientError('client_closed', 'The EpushClient is closed.', {
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
    // 503 (backplane unavailable, draining) and 429 (rate limited): the server did not act.
    return { ok: false, error, retry: status === 503 || status === 429 };
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
        error: new EpushClientError('client_closed', 'The EpushClient is closed.', {
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
}

function isTokenList(value: unknown, length: number): value is string[] {
  return (
    Array.isArray(value) &&
    value.length === length &&
    value.every((token) => typeof token === 'string' && token !== '')
  );
}

function memberPath(group: string, pushId: string): string {
  return `/api/groups/${encodeURIComponent(groupArg(group))}/members/${pushIdArg(pushId)}`;
}

function unexpected(message: string): EpushClientError {
  return new EpushClientError('unexpected_response', message);
}
