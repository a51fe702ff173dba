/**
 * The longpoll-fanout generator's API calls: mint push IDs, put them in a group (over several
 * keep-alive connections), publish one numbered group notification.
 */
import { performance } from 'node:perf_hooks';
import type { ApiClient, ApiResponse } from '../lib/http-client.js';
import type { RunClock } from './run-clock.js';
import type { Tally } from './tally.js';

export function expectStatus(response: ApiResponse, status: number, what: string): void {
  if (response.status !== status) {
    throw new Error(`${what}: HTTP ${response.status} ${response.body.slice(0, 200)}`);
  }
}

export async function mintPushIds(
  api: ApiClient,
  count: number,
  clock: RunClock,
): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < count) {
    const batch = Math.min(1000, count - ids.length);
    const response = await api.request('POST', '/api/push-ids', { count: batch });
    expectStatus(response, 201, 'POST /api/push-ids');
    const body = JSON.parse(response.body) as { pushIds?: unknown };
    if (!Array.isArray(body.pushIds) || body.pushIds.length !== batch) {
      throw new Error(`POST /api/push-ids returned ${response.body.slice(0, 200)}`);
    }
    for (const id of body.pushIds) ids.push(String(id));
    clock.check('minting push IDs');
  }
  return ids;
}

export async function addMembers(
  pool: readonly ApiClient[],
  group: string,
  ids: readonly string[],
  clock: RunClock,
): Promise<void> {
  let next = 0;
  await Promise.all(
    pool.map(async (api) => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const response = await api.request('PUT', `/api/groups/${group}/members/${id}`);
        expectStatus(response, 204, 'PUT member');
        clock.check('adding members');
      }
    }),
  );
}

export async function publish(
  api: ApiClient,
  group: string,
  tally: Tally,
  k: number,
): Promise<ApiResponse> {
  // The write happens inside request(); epush fans out before it answers 202, so deliveries
  // can be parsed before the publish response: the send time is set first.
  const sentAt = performance.now();
  tally.sentAt[k] = sentAt;
  return api.request('POST', `/api/groups/${group}/notify`, {
    payload: { k, t: Math.round(sentAt * 1000) },
  });
}
