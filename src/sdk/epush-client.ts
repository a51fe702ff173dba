/**
 * The Node SDK for applications that talk to a remote epush cluster over the application API
 * (docs/protocol.md). It keeps one keep-alive undici Pool per node, validates arguments locally with the
 * server's rules, and retries only what is safe to retry (docs/sdk.md has the table):
 *
 * - 503 and 429 are retried for every call: the server answered that it did not do the work.
 * - A failure before the request left this process (connection refused, DNS failure, connect
 *   timeout) is retried for every call: the server never saw it.
 * - Any other network failure, a timeout, or a balancer's 502 / 504 is retried only for calls
 *   that can safely run twice: PUT / DELETE / GET, createPushIds (a lost answer only wastes
 *   fresh push IDs, which expire unheld after the server's push-id-ttl), and notify, which
 *   always carries an Idempotency-Key (idempotent-calls.ts): the server publishes it once.
 *
 * This module imports only pure validators and types from src/core: no server I/O.
 */
import type { NodeInfo } from '../backplane/backplane.js';
import type { NotificationId } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import {
  MAX_LISTEN_TOKEN_TTL_SECONDS,
  MAX_PAYLOAD_BYTES,
  MAX_PUSH_IDS_PER_CALL,
} from '../core/limits.js';
import { isPushId, type PushId } from '../core/push-id.js';
import {
  groupArg,
  isRecord,
  isTokenList,
  memberPath,
  nonNegative,
  notifyBody,
  positiveInteger,
  pushIdArg,
} from './call-arguments.js';
import { EpushClientError, invalid, unexpected } from './client-error.js';
import { ClusterCaller } from './cluster-caller.js';
import {
  groupPresenceOf,
  pushIdPresenceOf,
  type GroupPresence,
  type PushIdPresence,
} from './presence-answers.js';
import {
  idempotencyKeyOf,
  idempotentNotify,
  readHistory,
  type HistoryOptions,
  type HistoryResult,
  type NotifyOptions,
} from './idempotent-calls.js';

export type {
  HistoryNotification,
  HistoryOptions,
  HistoryResult,
  NotifyOptions,
} from './idempotent-calls.js';

export {
  EpushClientError,
  type EpushClientErrorCode,
  type EpushClientLocalCode,
} from './client-error.js';

export type { GroupName, NodeInfo, NotificationId, PushId };
export { MAX_LISTEN_TOKEN_TTL_SECONDS, MAX_PAYLOAD_BYTES, MAX_PUSH_IDS_PER_CALL };

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

/** What {@link EpushApiClient.createPushIdsWithTokens} resolves with. */
export interface PushIdsWithTokens {
  readonly pushIds: PushId[];
  /** `listenTokens[i]` lets a browser listen on `pushIds[i]`; null when the server mints none. */
  readonly listenTokens: string[] | null;
}

/** What {@link EpushApiClient.listenTokens} resolves with. */
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

/**
 * A client of one epush cluster. Every method validates its arguments first and throws an
 * {@link EpushClientError} with code `invalid_argument` before sending anything.
 */
export class EpushApiClient {
  private readonly caller: ClusterCaller;

  constructor(options: EpushClientOptions) {
    const raw: unknown = options;
    if (!isRecord(raw)) throw invalid('EpushApiClient needs an options object.');
    const { url, urls } = options as { url?: unknown; urls?: unknown };
    if ((url === undefined) === (urls === undefined)) {
      throw invalid('Give exactly one of "url" and "urls".');
    }
    const list: unknown[] = urls === undefined ? [url] : Array.isArray(urls) ? urls : [];
    if (list.length === 0) throw invalid('"urls" must be a non-empty array of URLs.');

    if (typeof options.apiKey !== 'string' || !/^[\x21-\x7e]+$/.test(options.apiKey)) {
      throw invalid('"apiKey" must be a non-empty string of printable ASCII without spaces.');
    }
    const timeoutMs = positiveInteger(options.timeoutMs, 10_000, '"timeoutMs"');
    const retries: unknown = options.retries ?? {};
    if (!isRecord(retries)) throw invalid('"retries" must be an object.');

    this.caller = new ClusterCaller({
      urls: list,
      apiKey: options.apiKey,
      timeoutMs,
      attempts: positiveInteger(retries.attempts, 5, '"retries.attempts"'),
      baseDelayMs: nonNegative(retries.baseDelayMs, 100, '"retries.baseDelayMs"'),
      maxDelayMs: nonNegative(retries.maxDelayMs, 2_000, '"retries.maxDelayMs"'),
      connections: positiveInteger(options.connections, 16, '"connections"'),
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
    const body = await this.caller.call({
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
    const body = await this.caller.call({
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
    await this.caller.call({ method: 'PUT', path: memberPath(group, pushId), repeatable: true });
  }

  /** `DELETE /api/groups/{group}/members/{pushId}` (idempotent). */
  async removeMember(group: string, pushId: string): Promise<void> {
    await this.caller.call({ method: 'DELETE', path: memberPath(group, pushId), repeatable: true });
  }

  /** `GET /api/groups/{group}/members`. */
  async members(group: string): Promise<PushId[]> {
    const path = `/api/groups/${encodeURIComponent(groupArg(group))}/members`;
    const body = await this.caller.call({ method: 'GET', path, repeatable: true });
    const members = isRecord(body) ? body.members : undefined;
    if (!Array.isArray(members) || !members.every(isPushId)) {
      throw unexpected(`GET ${path} did not answer {"members": [...]}.`);
    }
    return members;
  }

  /**
   * `POST /api/groups/{group}/notify` with an `Idempotency-Key` (yours, or a random one): retried
   * like a GET, also when the answer was lost, and published once (docs/sdk.md).
   */
  async notifyGroup(
    group: string,
    payload?: unknown,
    options?: NotifyOptions,
  ): Promise<NotifyResult> {
    const path = `/api/groups/${encodeURIComponent(groupArg(group))}/notify`;
    return idempotentNotify(this.caller, path, notifyBody(payload), idempotencyKeyOf(options));
  }

  /** `POST /api/push-ids/{pushId}/notify`, retried like {@link notifyGroup}: published once. */
  async notifyPushId(
    pushId: string,
    payload?: unknown,
    options?: NotifyOptions,
  ): Promise<NotifyResult> {
    const path = `/api/push-ids/${pushIdArg(pushId)}/notify`;
    return idempotentNotify(this.caller, path, notifyBody(payload), idempotencyKeyOf(options));
  }

  /** `GET /api/groups/{group}/notifications`: the group's notifications within retention. */
  groupHistory(group: string, options?: HistoryOptions): Promise<HistoryResult> {
    const path = `/api/groups/${encodeURIComponent(groupArg(group))}/notifications`;
    return readHistory(this.caller, path, options);
  }

  /** `GET /api/push-ids/{pushId}/notifications`: direct ones and those of its groups. */
  pushIdHistory(pushId: string, options?: HistoryOptions): Promise<HistoryResult> {
    return readHistory(this.caller, `/api/push-ids/${pushIdArg(pushId)}/notifications`, options);
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
    const body = await this.caller.call({ method: 'GET', path: '/api/cluster', repeatable: true });
    const nodes = isRecord(body) ? body.nodes : undefined;
    if (
      !Array.isArray(nodes) ||
      !nodes.every((node) => isRecord(node) && typeof node.id === 'string')
    ) {
      throw unexpected('GET /api/cluster did not answer {"nodes": [...]}.');
    }
    return nodes as NodeInfo[];
  }

  /** `GET /api/push-ids/{pushId}`: listening, idle or expired, since when, and its groups. */
  async presence(pushId: string): Promise<PushIdPresence> {
    const path = `/api/push-ids/${pushIdArg(pushId)}`;
    return pushIdPresenceOf(
      await this.caller.call({ method: 'GET', path, repeatable: true }),
      path,
    );
  }

  /** `GET /api/groups/{group}/presence`: the member count and the members listening. */
  async groupPresence(group: string): Promise<GroupPresence> {
    const path = `/api/groups/${encodeURIComponent(groupArg(group))}/presence`;
    return groupPresenceOf(await this.caller.call({ method: 'GET', path, repeatable: true }), path);
  }

  /** Closes the connection pools once the calls in flight have finished. Later calls fail. */
  close(): Promise<void> {
    return this.caller.close();
  }

  // --- internals -----------------------------------------------------------------------------

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
}

/**
 * @deprecated Renamed {@link EpushApiClient}: `EpushClient` was one capital letter away from the
 * browser client's `EPushClient`. Same class; this alias will go in a later major version.
 */
export const EpushClient = EpushApiClient;
/** @deprecated Renamed {@link EpushApiClient}. */
export type EpushClient = EpushApiClient;
