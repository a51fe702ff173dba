/** held-max's setup: N push IDs minted and added to the one group, over several API connections. */
import { ApiClient } from '../lib/http-client.js';
import { NOTIFY_GROUP, log, type Deadline } from './run-support.js';

const MINT_BATCH = 1000;
const API_CLIENTS = 8;
const API_DEPTH = 32;

export async function mintAndJoin(port: number, n: number, deadline: Deadline): Promise<string[]> {
  const clients = await Promise.all(
    Array.from({ length: API_CLIENTS }, () => ApiClient.open('127.0.0.1', port)),
  );
  try {
    const ids: string[] = [];
    let batches = Math.ceil(n / MINT_BATCH);
    const mint = async (client: ApiClient): Promise<void> => {
      while (batches > 0) {
        batches -= 1;
        const count = Math.min(MINT_BATCH, n - ids.length);
        if (count <= 0) return;
        const answer = await client.request('POST', '/api/push-ids', { count });
        if (answer.status !== 200 && answer.status !== 201)
          throw new Error(`POST /api/push-ids: ${answer.status} ${answer.body.slice(0, 200)}`);
        ids.push(...(JSON.parse(answer.body) as { pushIds: string[] }).pushIds);
      }
    };
    await Promise.all(clients.map(mint));
    ids.length = Math.min(ids.length, n);
    log(`minted ${ids.length} push IDs; adding them to group "${NOTIFY_GROUP}"`);
    let next = 0;
    let done = 0;
    let lastLog = Date.now();
    const join = async (client: ApiClient): Promise<void> => {
      while (next < ids.length) {
        deadline.budget(1, 'the group was complete');
        const batch = ids.slice(next, next + API_DEPTH);
        next += batch.length;
        const answers = await Promise.all(
          batch.map((id) => client.request('PUT', `/api/groups/${NOTIFY_GROUP}/members/${id}`)),
        );
        for (const answer of answers) {
          if (answer.status !== 204 && answer.status !== 200) {
            throw new Error(`PUT member: ${answer.status} ${answer.body.slice(0, 200)}`);
          }
        }
        done += batch.length;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          log(`  ${done} / ${ids.length} members`);
        }
      }
    };
    await Promise.all(clients.map(join));
    return ids;
  } finally {
    for (const client of clients) client.close();
  }
}
