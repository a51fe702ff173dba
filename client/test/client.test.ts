import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pushId } from './fakes.js';
import { Site, type Tab } from './site.js';

type Tuple<T, N extends number, R extends T[] = []> = R['length'] extends N
  ? R
  : Tuple<T, N, [T, ...R]>;

/** Opens `count` tabs, each listening on its own push ID, and lets leadership settle. */
async function tabsWithIds<N extends number>(
  site: Site,
  count: N,
  options = {},
): Promise<Tuple<[Tab, string], N>> {
  const out: [Tab, string][] = [];
  for (let i = 0; i < count; i++) {
    const tab = site.openTab(options);
    const id = pushId(`tab${i}id`);
    tab.listen(id);
    out.push([tab, id]);
  }
  await site.advance(200);
  return out as Tuple<[Tab, string], N>;
}

describe('one connection per browser', () => {
  test('four tabs share one listen on the union of their push IDs, and each tab gets only its own notifications', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 4);
    assert.equal(site.leaders().length, 1);
    assert.equal(site.server.open, 1);
    assert.deepEqual(site.server.heldPushIds(), [tabs.map(([, id]) => id).sort()]);
    const sent = tabs.map(([, id], i) => site.server.notify(id, { i }));
    await site.advance(10);
    tabs.forEach(([tab, id], i) => {
      assert.deepEqual(tab.idsFor(id), [sent[i]]);
      assert.equal(tab.received.length, 1, `${tab.name} received only its own`);
    });
    assert.equal(site.server.maxConcurrent, 1);
  });

  test("a follower's new push ID joins the union and the leader re-listens from the same cursor", async () => {
    const site = new Site();
    const [[leader, leaderId]] = await tabsWithIds(site, 1);
    const follower = site.openTab();
    await site.advance(100);
    site.server.notify(leaderId);
    await site.advance(10);
    const cursorBefore = site.server.lastBody().cursor;
    assert.notEqual(cursorBefore, null);
    const late = pushId('late');
    follower.listen(late);
    await site.advance(10);
    const body = site.server.lastBody();
    assert.deepEqual(body.pushIds, [leaderId, late].sort());
    assert.equal(body.cursor, cursorBefore);
    assert.equal(site.server.open, 1);
    const id = site.server.notify(late);
    await site.advance(10);
    assert.deepEqual(follower.idsFor(late), [id]);
    assert.equal(leader.received.length, 1);
  });

  test('a notification published just before a push ID joins is still delivered: the re-listen resumes from the old cursor', async () => {
    const site = new Site();
    const [[, leaderId]] = await tabsWithIds(site, 1);
    const follower = site.openTab();
    site.server.notify(leaderId); // the site now has a cursor
    await site.advance(100);
    const late = pushId('late');
    site.network.paused = true; // the registration is slow to reach the leader
    follower.listen(late);
    const early = site.server.notify(late); // published after listen()...
    site.server.notify(leaderId); // ...and the leader's cursor moves past it before it hears
    await site.advance(10);
    site.network.resume();
    await site.advance(10);
    assert.deepEqual(follower.idsFor(late), [early]);
  });

  test('stop() removes a push ID from the union only when no view of it is left in any tab', async () => {
    const site = new Site();
    const a = site.openTab();
    const b = site.openTab();
    const shared = pushId('shared');
    const own = pushId('own');
    const stopA = a.listen(shared);
    const stopOwn = a.listen(own);
    const stopB = b.listen(shared);
    await site.advance(100);
    assert.deepEqual(site.server.heldPushIds(), [[own, shared].sort()]);
    stopOwn();
    await site.advance(10);
    assert.deepEqual(site.server.heldPushIds(), [[shared]]);
    stopA();
    await site.advance(10);
    assert.deepEqual(site.server.heldPushIds(), [[shared]], 'b still listens on it');
    const id = site.server.notify(shared);
    await site.advance(10);
    assert.deepEqual(b.idsFor(shared), [id]);
    assert.deepEqual(a.idsFor(shared), [], 'a stopped its view');
    stopB();
    stopB(); // idempotent
    await site.advance(10);
    assert.equal(site.server.open, 0);
  });

  test("a closed tab's push IDs leave the union at once (it unregisters on pagehide)", async () => {
    const site = new Site();
    const [[, leaderId], [follower, followerId]] = await tabsWithIds(site, 2);
    assert.deepEqual(site.server.heldPushIds(), [[leaderId, followerId].sort()]);
    follower.closeTab();
    await site.advance(10);
    assert.deepEqual(site.server.heldPushIds(), [[leaderId]]);
  });

  /**
   * A leader that opened and registered first, then two tabs that learn its push IDs from its
   * answer to their registration; `leave` ends the leader. Checks that the tab that takes over
   * listens only on the two others' push IDs at once (not after the 3 s a silent tab's
   * registration takes to go stale).
   */
  async function leaderLeaves(
    options: object,
    idleMs: number,
    leave: (leader: ReturnType<Site['leader']>) => void,
  ): Promise<void> {
    const site = new Site();
    const [[leader, leaderId]] = await tabsWithIds(site, 1, options);
    await site.advance(1500);
    const rest: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = pushId(`later${i}`);
      site.openTab(options).listen(id);
      rest.push(id);
      await site.advance(300);
    }
    await site.advance(idleMs);
    assert.equal(site.leader(), leader);
    leave(leader);
    let waited = 0;
    while (site.leaders().length === 0 && waited < 5000) {
      await site.advance(50);
      waited += 50;
    }
    await site.advance(50);
    assert.deepEqual(site.server.heldPushIds(), [rest.sort()]);
    assert.ok(!site.server.heldPushIds().flat().includes(leaderId));
  }

  for (const mode of ['web-locks', 'lease']) {
    const options = mode === 'lease' ? { locks: false, broadcastChannel: false } : {};
    test(`${mode}: a closed leader's push IDs are not inherited by the tab that takes over`, () =>
      leaderLeaves(options, 500, (leader) => {
        leader.closeTab();
      }));
  }

  test("web-locks: a crashed leader's push IDs are not inherited either (its lock is gone, so is it)", () =>
    // 40 s: long enough for a follower to forget a registration it did not hear again (30 s).
    leaderLeaves({}, 40_000, (leader) => {
      leader.kill(); // no pagehide: no goodbye
    }));

  test("a crashed follower's push IDs leave the union about 3 s after its last heartbeat", async () => {
    const site = new Site();
    const [[, leaderId], [follower, followerId]] = await tabsWithIds(site, 2);
    await site.advance(2000);
    follower.kill();
    await site.advance(2000);
    assert.deepEqual(
      site.server.heldPushIds(),
      [[leaderId, followerId].sort()],
      'still within 3 s',
    );
    await site.advance(2100);
    assert.deepEqual(site.server.heldPushIds(), [[leaderId]]);
  });

  test('a hidden follower whose timers are throttled keeps its push IDs by answering the leader heartbeats', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 2);
    const follower = tabs.map(([tab]) => tab).find((tab) => !tab.client.isLeader)!;
    follower.freezeTimers();
    await site.advance(30_000);
    assert.deepEqual(site.server.heldPushIds(), [tabs.map(([, id]) => id).sort()]);
  });

  test('a page restored from the back/forward cache rejoins and its push IDs are listened to again', async () => {
    const site = new Site();
    const [[, leaderId], [follower, followerId]] = await tabsWithIds(site, 2);
    follower.window.dispatch({ type: 'pagehide', persisted: true });
    await site.advance(10);
    assert.deepEqual(site.server.heldPushIds(), [[leaderId]]);
    follower.window.dispatch({ type: 'pageshow', persisted: true });
    await site.advance(10);
    assert.deepEqual(site.server.heldPushIds(), [[leaderId, followerId].sort()]);
    const id = site.server.notify(followerId);
    await site.advance(10);
    assert.deepEqual(follower.idsFor(followerId), [id]);
  });

  test('a tab opened later learns the shared status at once', async () => {
    const site = new Site();
    const [[, id]] = await tabsWithIds(site, 1);
    await site.advance(1000);
    const late = site.openTab();
    late.listen(id); // the union does not change, so only the new registration prompts an announce
    await site.advance(10);
    assert.equal(late.client.status, 'connected');
  });

  test('live followers keep their push IDs in the union indefinitely', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 3);
    await site.advance(60_000);
    assert.deepEqual(site.server.heldPushIds(), [tabs.map(([, id]) => id).sort()]);
  });
});

describe('leader handover', () => {
  for (const mode of ['web-locks', 'lease']) {
    const options = mode === 'lease' ? { locks: false, broadcastChannel: false } : {};
    test(`${mode}: when the leader crashes, a survivor takes over within 2 s and every notification published meanwhile arrives once`, async () => {
      const site = new Site();
      const tabs = await tabsWithIds(site, 3, options);
      if (mode === 'lease') await site.advance(1000);
      const leader = site.leader();
      assert.deepEqual(leader.client.sharing, {
        mode: 'origin',
        leadership: mode,
        channel: mode === 'lease' ? 'storage' : 'broadcast-channel',
      });
      const survivors = tabs.filter(([tab]) => tab !== leader);
      const before = survivors.map(([, id]) => site.server.notify(id, 'before'));
      await site.advance(10);
      const lastCursor = site.server.lastBody().cursor;
      leader.kill();
      // Published while nobody holds the connection.
      const during = survivors.map(([, id]) => site.server.notify(id, 'during'));
      let waited = 0;
      while (site.leaders().length === 0 && waited < 5000) {
        await site.advance(50);
        waited += 50;
      }
      assert.ok(waited < 2000, `took over after ${waited} ms`);
      await site.advance(50);
      const after = survivors.map(([, id]) => site.server.notify(id, 'after'));
      await site.advance(50);
      survivors.forEach(([tab, id], i) => {
        assert.deepEqual(tab.idsFor(id), [before[i], during[i], after[i]], tab.name);
      });
      const resumed = site.server.requests.find((request) => request.client === site.leader().name);
      assert.equal(
        resumed?.body.cursor,
        lastCursor,
        'the new leader resumed from the shared cursor',
      );
    });
  }

  test('a leader that dies after saving its state but before its broadcast arrives loses nothing', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 2);
    const leader = site.leader();
    const [survivor, id] = tabs.find(([tab]) => tab !== leader)!;
    const heard = site.server.notify(id, 'heard');
    await site.advance(10);
    // The leader receives the next answer and saves its state (cursor past `lost`, `lost` in its
    // dedupe memory), but the broadcast it posted never reaches the other tab.
    site.network.paused = true;
    const lost = site.server.notify(id, 'lost');
    await site.advance(10);
    leader.kill();
    site.network.dropQueued();
    let waited = 0;
    while (site.leaders().length === 0 && waited < 5000) {
      await site.advance(50);
      waited += 50;
    }
    await site.advance(100);
    assert.equal(site.leader(), survivor);
    assert.deepEqual(survivor.idsFor(id), [heard, lost]);
  });

  test('a tab that leaves hands over at once: the next leader listens without waiting for a lease', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 2, { locks: false, broadcastChannel: false });
    await site.advance(1000);
    const leader = site.leader();
    leader.closeTab();
    await site.advance(150);
    const survivor = tabs.map(([tab]) => tab).find((tab) => tab !== leader);
    assert.ok(survivor?.client.isLeader);
  });

  test('a reload resumes from the persisted cursor: notifications published while no tab was open arrive', async () => {
    const site = new Site();
    const id = pushId('reload');
    const first = site.openTab();
    first.listen(id);
    await site.advance(100);
    const shown = site.server.notify(id);
    await site.advance(10);
    first.closeTab();
    const missed = site.server.notify(id);
    await site.advance(500);
    const second = site.openTab();
    second.listen(id);
    await site.advance(100);
    assert.deepEqual(first.idsFor(id), [shown]);
    assert.deepEqual(second.idsFor(id), [missed]);
  });

  test('a reloaded page resuming from an older cursor does not show again what it was shown (its ledger)', async () => {
    const site = new Site();
    const id = pushId('dedupe');
    const first = site.openTab();
    first.listen(id);
    await site.advance(100);
    const n1 = site.server.notify(id);
    await site.advance(10);
    first.closeTab();
    // As if the last save had happened before the cursor moved past n1.
    const key = `${first.client.channelName}:state`;
    const state = JSON.parse(site.storage.data.get(key)!) as { cursor: string };
    site.storage.data.set(key, JSON.stringify({ ...state, cursor: 'e1-0' }));
    const n2 = site.server.notify(id);
    const second = site.reloadTab(first);
    second.listen(id);
    await site.advance(100);
    assert.deepEqual(second.idsFor(id), [n2]);
    assert.deepEqual(first.idsFor(id), [n1]);
  });

  for (const goodbye of ['arrives', 'is lost'] as const) {
    test(`a follower reloaded before the broadcast of an answer reached it gets that notification after the reload, once (its goodbye ${goodbye})`, async () => {
      const site = new Site();
      const [[leader, idA], [follower, idB]] = await tabsWithIds(site, 2);
      assert.equal(site.leader(), leader);
      const before = site.server.notify(idB);
      await site.advance(10);
      // The leader gets the answer and broadcasts it, but the page unloads before the broadcast
      // is dispatched to it: the shared cursor moves past a notification it never showed.
      site.network.paused = true;
      const missed = site.server.notify(idB);
      await site.advance(10);
      const reloaded = site.reloadTab(follower);
      // A lost goodbye leaves the old page's registration, so the union does not change.
      if (goodbye === 'arrives') site.network.resume();
      else site.network.dropQueued();
      reloaded.listen(idB);
      const after = site.server.notify([idA, idB]);
      await site.advance(100);
      assert.deepEqual(follower.idsFor(idB), [before]);
      assert.deepEqual(reloaded.idsFor(idB), [missed, after]);
      assert.deepEqual(leader.idsFor(idA), [after], 'the re-read shows the leader nothing twice');
    });
  }

  test('a follower reloaded as the leader closes leads at once and resumes from what it was shown itself', async () => {
    const site = new Site();
    const [[leader], [follower, id]] = await tabsWithIds(site, 2);
    assert.equal(site.leader(), leader);
    const before = site.server.notify(id);
    await site.advance(10);
    site.network.paused = true;
    const missed = site.server.notify(id);
    await site.advance(10); // the leader saved the cursor after `missed`; its broadcast waits
    const reloaded = site.reloadTab(follower);
    reloaded.listen(id); // its registration (with since) goes to a leader that is going
    leader.closeTab();
    site.network.dropQueued();
    const after = site.server.notify(id);
    await site.advance(200);
    assert.equal(site.leader(), reloaded);
    assert.deepEqual(follower.idsFor(id), [before]);
    assert.deepEqual(reloaded.idsFor(id), [missed, after]);
  });

  test('several leaders at once (tabs that cannot elect) still show each notification once in every tab', async () => {
    const site = new Site();
    // No Web Locks and no localStorage: every tab leads, but they share the channel.
    const tabs = await tabsWithIds(site, 3, { locks: false, localStorage: false });
    assert.equal(site.leaders().length, 3);
    const shared = pushId('everyone');
    for (const [tab] of tabs) tab.listen(shared);
    await site.advance(3000);
    const ids = [site.server.notify(shared), site.server.notify(shared)];
    await site.advance(3000);
    for (const [tab] of tabs) assert.deepEqual(tab.idsFor(shared), ids, tab.name);
  });
});

describe('events in every tab', () => {
  test("followers mirror the leader's status", async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 3);
    await site.advance(1000);
    for (const [tab] of tabs) assert.deepEqual(tab.statuses, ['connected'], tab.name);
    site.server.faults.push({ kind: 'network' });
    site.server.drain(); // the re-listen hits the network fault
    await site.advance(10);
    for (const [tab] of tabs) assert.equal(tab.client.status, 'reconnecting', tab.name);
    await site.advance(2000);
    for (const [tab] of tabs)
      assert.deepEqual(tab.statuses, ['connected', 'reconnecting', 'connected'], tab.name);
  });

  test('reset: true emits reset in every tab and listening continues from the new cursor', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 2);
    site.server.notify(tabs[0][1]);
    await site.advance(10);
    site.server.epoch = 'e2'; // the log was lost: every cursor handed out is now unresumable
    site.server.drain();
    await site.advance(10);
    for (const [tab] of tabs)
      assert.deepEqual(tab.resets, [{ reason: 'cursor-too-old' }], tab.name);
    await site.advance(1000); // a second flagged answer in a row (reconnect, then reset) waits a jittered moment
    const [, [follower, followerId]] = tabs;
    const id = site.server.notify(followerId);
    await site.advance(10);
    assert.deepEqual(follower.idsFor(followerId), [id]);
    assert.match(site.server.lastBody().cursor ?? '', /^e2-/);
  });

  test('an expired push ID emits expired in the tab listening on it and leaves the union', async () => {
    const site = new Site();
    const [[leader, leaderId], [follower, followerId]] = await tabsWithIds(site, 2);
    site.server.expired.add(followerId);
    site.server.drain();
    await site.advance(50);
    assert.deepEqual(follower.expired, [[followerId]]);
    assert.deepEqual(leader.expired, []);
    assert.deepEqual(site.server.heldPushIds(), [[leaderId]]);
    await site.advance(5000);
    assert.deepEqual(follower.expired, [[followerId]], 'reported once');
    assert.deepEqual(site.server.heldPushIds(), [[leaderId]]);
    follower.listen(followerId);
    await site.advance(10);
    assert.deepEqual(
      follower.expired,
      [[followerId], [followerId]],
      'listening again reports it again',
    );
    assert.deepEqual(site.server.heldPushIds(), [[leaderId]]);
  });

  test('offline: every tab reports offline and nothing is attempted; online: the leader re-listens at once', async () => {
    const site = new Site();
    const tabs = await tabsWithIds(site, 2);
    await site.advance(1000);
    const requests = site.server.requests.length;
    site.setOnline(false);
    await site.advance(10);
    for (const [tab] of tabs) assert.equal(tab.client.status, 'offline', tab.name);
    assert.equal(site.server.open, 0);
    await site.advance(60_000);
    assert.equal(site.server.requests.length, requests);
    site.setOnline(true);
    await site.advance(10);
    assert.equal(site.server.open, 1);
    for (const [tab] of tabs) assert.equal(tab.client.status, 'reconnecting', tab.name);
    await site.advance(1000);
    for (const [tab] of tabs) assert.equal(tab.client.status, 'connected', tab.name);
  });

  test('a throwing notification callback does not stop the other views', async () => {
    const site = new Site();
    const tab = site.openTab();
    const id = pushId('throws');
    const seen: string[] = [];
    tab.client.listen(id, () => {
      throw new Error('app bug');
    });
    tab.client.listen(id, (n) => seen.push(n.id));
    await site.advance(100);
    const sent = site.server.notify(id);
    await site.advance(10);
    assert.deepEqual(seen, [sent]);
    assert.equal(tab.logger.errors.length, 1);
  });

  test('a group notification reaching two push IDs of one tab is delivered to each of them', async () => {
    const site = new Site();
    const tab = site.openTab();
    const one = pushId('one');
    const two = pushId('two');
    tab.listen(one);
    tab.listen(two);
    await site.advance(100);
    const id = site.server.notify([one, two], { v: 1 }, 'room');
    await site.advance(10);
    assert.deepEqual(
      tab.received.map((n) => [n.id, n.pushId, n.group]),
      [
        [id, one, 'room'],
        [id, two, 'room'],
      ],
    );
  });
});

describe('listen() input', () => {
  test('listen() refuses something that is not a push ID, so one bad ID cannot break the shared listen', () => {
    const site = new Site();
    const tab = site.openTab();
    assert.throws(() => tab.listen('short'), TypeError);
    assert.throws(() => tab.listen('has spaces in it, not allowed'), TypeError);
    tab.client.shutdown();
  });
});
