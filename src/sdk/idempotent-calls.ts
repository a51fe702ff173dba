/**
 * The SDK's idempotent notify and history calls (docs/sdk.md): every notify carries an
 * `Idempotency-Key` (the caller's, or a random one), so a notify whose answer was lost (a reset
 * connection, a timeout, a 502 / 503 / 504 from a balancer) is sent again with the same key,
 * on the next node: the server publishes it once and answers the first call's id.
 */
import { randomUUID } from 'node:crypto';
import type { NotificationId } from '../core/events.js';
import { IDEMPOTENCY_KEY_PATTERN } from '../core/idempotency.js';
import { isRecord } from './call-arguments.js';
import { invalid, unexpected } from './client-error.js';
import type { ClusterCaller } from './cluster-caller.js';

export interface NotifyOptions {
  /**
   * 1-200 characters of `[A-Za-z0-9._:~-]`, e.g. your own event's id: a repeat within the
   * server's retention publishes nothing and answers the first call's id. Default: a random UUID
   * per call (retries of that call reuse it).
   */
  readonly idempotencyKey?: string;
}

export interface HistoryOptions {
  /** A cursor from an earlier history (or listen) answer: what came after it. */
  readonly since?: string;
  /** 1-1000, default 100. */
  readonly limit?: number;
}

export interface HistoryNotification {
  readonly id: NotificationId;
  readonly pushId: string | null;
  readonly group: string | null;
  readonly payload: unknown;
  /** ISO 8601. */
  readonly publishedAt: string;
}

export interface HistoryResult {
  /** Oldest first. */
  readonly notifications: HistoryNotification[];
  /** Pass as `since` to read on. */
  readonly cursor: string;
  /** True when `since` was older than the server's retention: the page starts at the head. */
  readonly reset: boolean;
}

export function idempotencyKeyOf(options: unknown): string {
  if (options === undefined) return randomUUID();
  if (!isRecord(options)) throw invalid('The notify options must be an object.');
  const key = options.idempotencyKey;
  if (key === undefined) return randomUUID();
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw invalid('"idempotencyKey" must be 1-200 characters of letters, digits and . _ : ~ -');
  }
  return key;
}

/** One notify, retried safely under its key. */
export async function idempotentNotify(
  caller: ClusterCaller,
  path: string,
  body: string | undefined,
  key: string,
): Promise<{ id: NotificationId }> {
  const answer = await caller.call({
    method: 'POST',
    path,
    ...(body === undefined ? {} : { body }),
    headers: { 'idempotency-key': key },
    repeatable: true,
  });
  const id = isRecord(answer) ? answer.id : undefined;
  if (typeof id !== 'string' || id === '') {
    throw unexpected(`POST ${path} did not answer {"id": "..."}.`);
  }
  return { id: id as NotificationId };
}

/** `GET <path>?since=&limit=`, validated locally and checked on the way back. */
export async function readHistory(
  caller: ClusterCaller,
  path: string,
  options: unknown,
): Promise<HistoryResult> {
  if (options !== undefined && !isRecord(options)) {
    throw invalid('The history options must be an object.');
  }
  const { since, limit } = options ?? {};
  const query = new URLSearchParams();
  if (since !== undefined) {
    if (typeof since !== 'string' || since === '') throw invalid('"since" must be a cursor.');
    query.set('since', since);
  }
  if (limit !== undefined) {
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw invalid('"limit" must be a whole number from 1 to 1000.');
    }
    query.set('limit', String(limit));
  }
  const full = query.size === 0 ? path : `${path}?${query.toString()}`;
  const body = await caller.call({ method: 'GET', path: full, repeatable: true });
  if (
    !isRecord(body) ||
    !Array.isArray(body.notifications) ||
    typeof body.cursor !== 'string' ||
    !body.notifications.every((n) => isRecord(n) && typeof n.id === 'string')
  ) {
    throw unexpected(`GET ${path} did not answer {"notifications": [...], "cursor": "..."}.`);
  }
  return {
    notifications: body.notifications as HistoryNotification[],
    cursor: body.cursor,
    reset: body.reset === true,
  };
}
