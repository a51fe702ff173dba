import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { FetchLike, ForbiddenEvent } from '../src/types.js';
import { pushId } from './fakes.js';
import { Site, type Tab } from './site.js';

const TOKEN_A = `v1.1900000000.${'A'.repeat(43)}`;
const TOKEN_B = `v1.1900000000.${'B'.repeat(43)}`;
const BAD = `v1.1900000000.${'Z'.repeat(43)}`;

interface SentBody {
  readonly pushIds: string[];
  readonly listenTokens?: (string | null)[];
}

/**
 * A site whose push server refuses (403 `forbidden`, naming the push IDs) every listen that
 * carries `BAD` or no token for a push ID in `required`; every listen body is recorded.
 */
function siteRefusing(required: ReadonlySet<string>): {
  site: Site;
  bodies: SentBody[];
  open: (name?: string) => Tab;
} {
  const site = new Site();
  const bodies: SentBody[] = [];
  const open = (): Tab => {
    let tab: Tab | null = null;
    const fetch: FetchLike = (url, init) => {
      const body = JSON.parse(init.body) as SentBody;
      bodies.push(body);
      const refused = body.pushIds.filter((id, index) => {
        const token = body.listenTokens?.[index] ?? null;
        return token === BAD || (token === null && required.has(id));
      });
      if (refused.length > 0) {
        const error = { code: 'forbidden', message: `refused ${refused[0]}`, pushIds: refused };
        return Promise.resolve({
          ok: false,
          status: 403,
          headers: { get: () => null },
          text: () => Promise.resolve(JSON.stringify({ error })),
        });
      }
      return site.server.fetchFor(tab?.name ?? 'tab')(url, init);
    };
    tab = site.openTab({ extra: { fetch, transport: 'long-poll' } });
    return tab;
  };
  return { site, bodies, open };
}

describe('listen tokens in the browser client', () => {
  test("a follower's listen token travels to the leader and is sent with its push ID", async () => {
    const { site, bodies, open } = siteRefusing(new Set());
    const leader = open();
    const a = pushId('leaderA');
    leader.client.listen(a, () => undefined, { listenToken: TOKEN_A });
    await site.advance(200);
    const follower = open();
    await site.advance(200);
    assert.equal(site.leader(), leader);
    const b = pushId('followerB');
    follower.client.listen(b, () => undefined, { listenToken: TOKEN_B });
    await site.advance(50);
    const last = bodies.at(-1);
    assert.deepEqual(last?.pushIds, [a, b].sort());
    const byId = new Map(last?.pushIds.map((id, i) => [id, last.listenTokens?.[i]]));
    assert.equal(byId.get(a), TOKEN_A);
    assert.equal(byId.get(b), TOKEN_B);
  });

  test('a refused token surfaces as `forbidden` in its tab, the others keep listening, and nothing loops', async () => {
    const a = pushId('okA');
    const b = pushId('refusedB');
    const { site, bodies, open } = siteRefusing(new Set([a, b]));
    const leader = open();
    leader.client.listen(a, () => undefined, { listenToken: TOKEN_A });
    await site.advance(200);
    const follower = open();
    const events: ForbiddenEvent[] = [];
    const leaderEvents: ForbiddenEvent[] = [];
    follower.client.on('forbidden', (event) => events.push(event));
    leader.client.on('forbidden', (event) => leaderEvents.push(event));
    await site.advance(200);
    follower.client.listen(b, () => undefined, { listenToken: BAD });
    await site.advance(100);
    assert.deepEqual(
      events.map((event) => event.pushIds),
      [[b]],
    );
    assert.match(events[0]?.message ?? '', /refused/);
    assert.deepEqual(leaderEvents, [], 'only the tab that owns the push ID hears of it');
    const before = bodies.length;
    await site.advance(5000);
    assert.ok(bodies.length - before <= 1, `no hot loop (${bodies.length - before} listens)`);
    assert.deepEqual(site.server.heldPushIds(), [[a]]);
    // A fresh token for the push ID puts it back into the listen.
    follower.client.listen(b, () => undefined, { listenToken: TOKEN_B });
    await site.advance(50);
    assert.deepEqual(site.server.heldPushIds(), [[a, b].sort()]);
  });

  test('listen() refuses a listenToken that is not a token', () => {
    const { open } = siteRefusing(new Set());
    const tab = open();
    assert.throws(
      () => tab.client.listen(pushId('x'), () => undefined, { listenToken: 'nope' }),
      TypeError,
    );
  });
});
