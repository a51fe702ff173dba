import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterEventSink, ListenerSnapshot } from '../backplane/backplane.js';
import { MemoryBackplane } from '../backplane/memory-backplane.js';
import { decodeCursor, type CursorPosition } from '../core/cursor.js';
import type { ClusterEvent, NotificationId } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import { mintPushIds, type PushId } from '../core/push-id.js';
import { ListenStream, type StreamCloseReason } from '../transports/listen-stream.js';
import {
  ConnectionCounter,
  type AfterAnswer,
  type ListenerConnection,
} from '../transports/listener-connection.js';
import { Dispatcher } from './dispatcher.js';

interface Answer {
  notifications: { id: string; pushId: string; group: string | null; payload: unknown }[];
  cursor: string;
  expired: string[];
  reconnect?: boolean;
  reset?: boolean;
  replaced?: boolean;
}

class FakeConnection implements ListenerConnection {
  readonly transport = 'long-poll' as const;
  readonly streaming = false;
  answers: Answer[] = [];
  closed = false;
  private onCloseCallback: (() => void) | null = null;
  send(json: string): void {
    this.answers.push(JSON.parse(json) as Answer);
    this.closed = true;
  }
  onClose(callback: () => void): void {
    this.onCloseCallback = callback;
  }
  hangUp(): void {
    this.closed = true;
    this.onCloseCallback?.();
  }
}

/** An SSE / WebSocket listener as the dispatcher sees it: one registration, many answers. */
class FakeStreamingConnection implements ListenerConnection {
  readonly transport = 'sse' as const;
  readonly streaming = true;
  records: { answer: Answer; after: AfterAnswer; cursor: string }[] = [];
  closed = false;
  private onCloseCallback: (() => void) | null = null;
  send(json: string, after: AfterAnswer, cursor: string): void {
    this.records.push({ answer: JSON.parse(json) as Answer, after, cursor });
    if (after !== 'wait') this.closed = true;
  }
  onClose(callback: () => void): void {
    this.onCloseCallback = callback;
  }
  hangUp(): void {
    this.closed = true;
    this.onCloseCallback?.();
  }
}

function seqOf(cursor: string): number {
  const position = decodeCursor(cursor);
  assert.ok(position, `not a cursor: ${cursor}`);
  return position.seq;
}

let n = 0;
function note(group: GroupName | null, pushId: PushId | null, payload: unknown = null) {
  n += 1;
  return {
    type: 'notification' as const,
    id: `t${n}` as NotificationId,
    group,
    pushId,
    payloadJson: JSON.stringify(payload),
    publishedAt: Date.now(),
  };
}

async function setup(
  backplane = new MemoryBackplane({
    retentionMs: 60_000,
    pushIdTtlMs: 60_000,
    maxLogBytes: 1 << 24,
    nodeTimeoutMs: 15_000,
  }),
  options: { holdMs?: number; now?: () => number; parkMs?: number; maxDeliveries?: number } = {},
) {
  const dispatcher = new Dispatcher(backplane, {
    holdMs: options.holdMs ?? 60_000,
    maxDeliveriesPerAnswer: options.maxDeliveries ?? 500,
    parkMs: options.parkMs ?? 0,
    ...(options.now ? { now: options.now } : {}),
  });
  await backplane.start(dispatcher);
  dispatcher.start((await backplane.head()).seq);
  const ids = mintPushIds(3);
  await backplane.register(ids);
  return { backplane, dispatcher, ids };
}

describe('Dispatcher', () => {
  test('a held listen is answered by the first notification that reaches it, and only it', async () => {
    const { backplane, dispatcher, ids } = await setup();
    const room = 'room' as GroupName;
    await backplane.addMember(room, ids[0]!);
    const member = new FakeConnection();
    const outsider = new FakeConnection();
    await dispatcher.listen([ids[0]!], null, member);
    await dispatcher.listen([ids[1]!], null, outsider);
    assert.equal(dispatcher.listenerCount, 2);
    await backplane.publish(note(room, null, 'hi'));
    assert.equal(member.answers.length, 1);
    assert.deepEqual(
      member.answers[0]?.notifications.map((x) => [x.pushId, x.payload]),
      [[ids[0], 'hi']],
    );
    assert.equal(outsider.answers.length, 0);
    assert.equal(dispatcher.listenerCount, 1);
    dispatcher.stop();
  });

  test('a listener whose cursor is ahead of this node is not sent what it already has', async () => {
    // Another node answered this listener up to its cursor, and this node's fan-out lags (a
    // broker reconnect, load): the event arriving late here must not be delivered again.
    class LaggingBackplane extends MemoryBackplane {
      private held: ClusterEvent[] = [];
      private outer: ClusterEventSink | null = null;
      lagging = true;
      override start(sink: ClusterEventSink): Promise<void> {
        this.outer = sink;
        return super.start({
          onEvent: (event) => {
            if (this.lagging) this.held.push(event);
            else sink.onEvent(event);
          },
          onGap: (seq) => {
            sink.onGap(seq);
          },
          onAvailability: (up) => {
            sink.onAvailability(up);
          },
        });
      }
      catchUp(): void {
        this.lagging = false;
        for (const event of this.held.splice(0)) this.outer?.onEvent(event);
      }
    }
    const backplane = new LaggingBackplane({
      retentionMs: 60_000,
      pushIdTtlMs: 60_000,
      maxLogBytes: 1 << 24,
      nodeTimeoutMs: 15_000,
    });
    const { dispatcher, ids } = await setup(backplane);
    await backplane.publish(note(null, ids[0]!, 'seen elsewhere'));
    const heardUpTo = decodeCursor((await backplane.head()).cursor);
    const connection = new FakeConnection();
    await dispatcher.listen([ids[0]!], heardUpTo, connection);
    assert.equal(dispatcher.listenerCount, 1);
    backplane.catchUp();
    assert.equal(connection.answers.length, 0, 'delivered twice');
    await backplane.publish(note(null, ids[0]!, 'new'));
    assert.deepEqual(
      connection.answers[0]?.notifications.map((x) => x.payload),
      ['new'],
    );
    dispatcher.stop();
  });

  test('a notification published between the read and the registration is not missed', async () => {
    class RacingBackplane extends MemoryBackplane {
      raced = false;
      override async readForListener(
        from: CursorPosition | null,
        pushIds: readonly PushId[],
        limit: number,
      ): Promise<ListenerSnapshot> {
        const snapshot = await super.readForListener(from, pushIds, limit);
        if (!this.raced) {
          this.raced = true;
          await this.publish(note(null, pushIds[0]!, 'raced'));
        }
        return snapshot;
      }
    }
    const { dispatcher, ids } = await setup(
      new RacingBackplane({
        retentionMs: 60_000,
        pushIdTtlMs: 60_000,
        maxLogBytes: 1 << 24,
        nodeTimeoutMs: 15_000,
      }),
    );
    const connection = new FakeConnection();
    await dispatcher.listen([ids[0]!], null, connection);
    assert.deepEqual(
      connection.answers[0]?.notifications.map((x) => x.payload),
      ['raced'],
    );
    assert.equal(dispatcher.listenerCount, 0);
    dispatcher.stop();
  });

  test('a membership change between the read and the registration is applied', async () => {
    const room = 'late-room' as GroupName;
    class RacingBackplane extends MemoryBackplane {
      override async readForListener(
        from: CursorPosition | null,
        pushIds: readonly PushId[],
        limit: number,
      ): Promise<ListenerSnapshot> {
        const snapshot = await super.readForListener(from, pushIds, limit);
        await this.addMember(room, pushIds[0]!);
        return snapshot;
      }
    }
    const { backplane, dispatcher, ids } = await setup(
      new RacingBackplane({
        retentionMs: 60_000,
        pushIdTtlMs: 60_000,
        maxLogBytes: 1 << 24,
        nodeTimeoutMs: 15_000,
      }),
    );
    const connection = new FakeConnection();
    await dispatcher.listen([ids[0]!], null, connection);
    assert.equal(connection.answers.length, 0);
    await backplane.publish(note(room, null, 'after-join'));
    assert.deepEqual(
      connection.answers[0]?.notifications.map((x) => x.payload),
      ['after-join'],
    );
    dispatcher.stop();
  });

  test('a newer listen for the same push ID answers the older one at once with replaced', async () => {
    const { dispatcher, ids } = await setup();
    const older = new FakeConnection();
    const newer = new FakeConnection();
    await dispatcher.listen([ids[0]!, ids[1]!], null, older);
    await dispatcher.listen([ids[1]!], null, newer);
    assert.equal(older.answers[0]?.replaced, true);
    assert.equal(newer.answers.length, 0);
    assert.equal(dispatcher.listenerCount, 1);
    dispatcher.stop();
  });

  test('a listener that hangs up is dropped and receives nothing', async () => {
    const { backplane, dispatcher, ids } = await setup();
    const connection = new FakeConnection();
    await dispatcher.listen([ids[0]!], null, connection);
    connection.hangUp();
    assert.equal(dispatcher.listenerCount, 0);
    await backplane.publish(note(null, ids[0]!));
    assert.equal(connection.answers.length, 0);
    dispatcher.stop();
  });

  test('draining answers every held listen with reconnect and refuses new ones', async () => {
    const { dispatcher, ids } = await setup();
    const held = new FakeConnection();
    await dispatcher.listen([ids[0]!], null, held);
    dispatcher.drain();
    assert.equal(held.answers[0]?.reconnect, true);
    assert.ok(decodeCursor(held.answers[0]?.cursor ?? ''));
    const late = new FakeConnection();
    await dispatcher.listen([ids[1]!], null, late);
    assert.equal(late.answers[0]?.reconnect, true);
    assert.equal(dispatcher.listenerCount, 0);
    dispatcher.stop();
  });

  test('a gap in the event stream sends waiting listeners back to the log with their cursor', async () => {
    const { dispatcher, ids } = await setup();
    const connection = new FakeConnection();
    await dispatcher.listen([ids[0]!], null, connection);
    dispatcher.onGap(1000);
    assert.equal(connection.answers.length, 1);
    assert.deepEqual(connection.answers[0]?.notifications, []);
    dispatcher.stop();
  });

  test('unknown push IDs are answered at once as expired, with a cursor', async () => {
    const { dispatcher, ids } = await setup();
    const [stranger] = mintPushIds(1);
    const connection = new FakeConnection();
    await dispatcher.listen([ids[0]!, stranger!], null, connection);
    assert.deepEqual(connection.answers[0]?.expired, [stranger]);
    assert.ok(decodeCursor(connection.answers[0]?.cursor ?? ''));
    dispatcher.stop();
  });

  describe('streaming listeners (SSE, WebSocket)', () => {
    test('one registration gets several notifications, each answered with wait and a later cursor', async () => {
      const { backplane, dispatcher, ids } = await setup();
      const room = 'stream-room' as GroupName;
      await backplane.addMember(room, ids[0]!);
      const stream = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, stream);
      await backplane.publish(note(null, ids[0]!, 'one'));
      await backplane.publish(note(room, null, 'two'));
      await backplane.publish(note(null, ids[1]!, 'not mine'));
      await backplane.publish(note(null, ids[0]!, 'three'));
      assert.deepEqual(
        stream.records.map((r) => [r.after, r.answer.notifications.map((x) => x.payload)]),
        [
          ['wait', ['one']],
          ['wait', ['two']],
          ['wait', ['three']],
        ],
      );
      for (const record of stream.records) assert.equal(record.cursor, record.answer.cursor);
      const seqs = stream.records.map((r) => seqOf(r.cursor));
      for (let i = 1; i < seqs.length; i++) {
        assert.ok(seqs[i]! > seqs[i - 1]!, `cursors do not increase: ${seqs.join(', ')}`);
      }
      assert.equal(dispatcher.listenerCount, 1, 'the streaming listener stays registered');
      stream.hangUp();
      assert.equal(dispatcher.listenerCount, 0);
      await backplane.publish(note(null, ids[0]!, 'after hang-up'));
      assert.equal(stream.records.length, 3);
      dispatcher.stop();
    });

    test('a notification published between the read and the registration is sent with wait, and the listener stays', async () => {
      class RacingBackplane extends MemoryBackplane {
        raced = false;
        override async readForListener(
          from: CursorPosition | null,
          pushIds: readonly PushId[],
          limit: number,
        ): Promise<ListenerSnapshot> {
          const snapshot = await super.readForListener(from, pushIds, limit);
          if (!this.raced) {
            this.raced = true;
            await this.publish(note(null, pushIds[0]!, 'raced'));
          }
          return snapshot;
        }
      }
      const { backplane, dispatcher, ids } = await setup(
        new RacingBackplane({
          retentionMs: 60_000,
          pushIdTtlMs: 60_000,
          maxLogBytes: 1 << 24,
          nodeTimeoutMs: 15_000,
        }),
      );
      const stream = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, stream);
      assert.deepEqual(
        stream.records.map((r) => [r.after, r.answer.notifications.map((x) => x.payload)]),
        [['wait', ['raced']]],
      );
      assert.equal(dispatcher.listenerCount, 1);
      await backplane.publish(note(null, ids[0]!, 'next'));
      assert.deepEqual(
        stream.records.map((r) => r.answer.notifications.map((x) => x.payload)),
        [['raced'], ['next']],
      );
      assert.ok(seqOf(stream.records[1]!.cursor) > seqOf(stream.records[0]!.cursor));
      dispatcher.stop();
    });

    test('hold expiry is a wait heartbeat carrying the cursor advanced past events for others, and it repeats', async () => {
      let clock = Date.now();
      const { backplane, dispatcher, ids } = await setup(undefined, {
        holdMs: 1000,
        now: () => clock,
      });
      const stream = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, stream);
      const registered = seqOf((await backplane.head()).cursor);
      await backplane.publish(note(null, ids[1]!, 'for another push ID'));
      assert.equal(stream.records.length, 0);
      clock += 1500;
      await new Promise((resolve) => setTimeout(resolve, 400)); // the 250 ms hold ticker
      assert.equal(stream.records.length, 1, 'no heartbeat after the hold');
      const [beat] = stream.records;
      assert.equal(beat!.after, 'wait');
      assert.deepEqual(beat!.answer.notifications, []);
      assert.deepEqual(beat!.answer.expired, []);
      assert.equal(beat!.cursor, beat!.answer.cursor);
      assert.ok(seqOf(beat!.cursor) > registered, 'the heartbeat cursor did not advance');
      assert.equal(beat!.cursor, (await backplane.head()).cursor);
      assert.equal(dispatcher.listenerCount, 1);
      clock += 1500;
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.equal(stream.records.length, 2, 'the hold timer was not started again');
      assert.equal(stream.records[1]!.after, 'wait');
      dispatcher.stop();
    });

    test('a notification restarts the hold: no heartbeat right after it', async () => {
      let clock = Date.now();
      const { backplane, dispatcher, ids } = await setup(undefined, {
        holdMs: 1000,
        now: () => clock,
      });
      const stream = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, stream);
      clock += 800;
      await backplane.publish(note(null, ids[0]!, 'x'));
      clock += 600; // 1400 ms after the listen, 600 ms after the notification
      await new Promise((resolve) => setTimeout(resolve, 400));
      assert.deepEqual(
        stream.records.map((r) => r.answer.notifications.length),
        [1],
      );
      dispatcher.stop();
    });

    test('a gap sends the streaming listener back to the log: relisten, with its cursor', async () => {
      const { backplane, dispatcher, ids } = await setup();
      const stream = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, stream);
      const head = (await backplane.head()).cursor;
      dispatcher.onGap(seqOf(head));
      assert.equal(stream.records.length, 1);
      assert.equal(stream.records[0]!.after, 'relisten');
      assert.deepEqual(stream.records[0]!.answer.notifications, []);
      assert.equal(stream.records[0]!.cursor, head);
      assert.equal(dispatcher.listenerCount, 0);
      dispatcher.stop();
    });

    test('drain ends a streaming listener with reconnect', async () => {
      const { dispatcher, ids } = await setup();
      const stream = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, stream);
      dispatcher.drain();
      assert.equal(stream.records.length, 1);
      assert.equal(stream.records[0]!.after, 'end');
      assert.equal(stream.records[0]!.answer.reconnect, true);
      assert.ok(decodeCursor(stream.records[0]!.cursor));
      assert.equal(dispatcher.listenerCount, 0);
      dispatcher.stop();
    });

    test('a newer listen for the same push ID ends the streaming one with replaced', async () => {
      const { dispatcher, ids } = await setup();
      const older = new FakeStreamingConnection();
      await dispatcher.listen([ids[0]!], null, older);
      await dispatcher.listen([ids[0]!], null, new FakeStreamingConnection());
      assert.deepEqual(
        older.records.map((r) => [r.after, r.answer.replaced]),
        [['end', true]],
      );
      assert.equal(dispatcher.listenerCount, 1);
      dispatcher.stop();
    });

    test('a stream closed as a slow consumer on its catch-up answer is not left registered', async () => {
      // The catch-up answer (events between the read and the registration) is the first write
      // of a ListenStream; if the peer is over budget then, the stream stops before the
      // dispatcher has registered its close callback.
      class RacingBackplane extends MemoryBackplane {
        override async readForListener(
          from: CursorPosition | null,
          pushIds: readonly PushId[],
          limit: number,
        ): Promise<ListenerSnapshot> {
          const snapshot = await super.readForListener(from, pushIds, limit);
          await this.publish(note(null, pushIds[0]!, 'raced'));
          return snapshot;
        }
      }
      const { dispatcher, ids } = await setup(
        new RacingBackplane({
          retentionMs: 60_000,
          pushIdTtlMs: 60_000,
          maxLogBytes: 1 << 24,
          nodeTimeoutMs: 15_000,
        }),
      );
      const closes: StreamCloseReason[] = [];
      const written: string[] = [];
      const counter = new ConnectionCounter();
      const stream = new ListenStream(
        'sse',
        {
          write: (json) => written.push(json),
          queuedBytes: () => 1 << 20, // a peer that took nothing
          close: (reason) => closes.push(reason),
        },
        (pushIds, from, connection) => dispatcher.listen(pushIds, from, connection),
        [ids[0]!],
        16 * 1024,
        counter,
      );
      await dispatcher.listen([ids[0]!], null, stream);
      assert.deepEqual(closes, ['slow-consumer']);
      assert.deepEqual(written, []);
      assert.equal(counter.slowConsumerCloses.get('sse'), 1);
      assert.equal(stream.closed, true);
      assert.equal(
        dispatcher.listenerCount,
        0,
        'the closed stream is still registered (its push IDs stay held, heartbeats go nowhere)',
      );
      assert.deepEqual(dispatcher.heldPushIds(), []);
      dispatcher.stop();
    });
  });

  describe('parking: an answered long-poll stays registered for its re-poll', () => {
    /** A memory backplane that counts the reads of listens that took the full path. */
    class CountingBackplane extends MemoryBackplane {
      reads = 0;
      override readForListener(
        from: CursorPosition | null,
        pushIds: readonly PushId[],
        max: number,
      ): Promise<ListenerSnapshot> {
        this.reads += 1;
        return super.readForListener(from, pushIds, max);
      }
    }
    const counting = (pushIdTtlMs = 60_000) =>
      new CountingBackplane({
        retentionMs: 60_000,
        pushIdTtlMs,
        maxLogBytes: 1 << 24,
        nodeTimeoutMs: 15_000,
      });

    async function listenOnce(
      dispatcher: Dispatcher,
      pushIds: PushId[],
      cursor: string | null,
    ): Promise<FakeConnection> {
      const connection = new FakeConnection();
      await dispatcher.listen(pushIds, cursor === null ? null : decodeCursor(cursor), connection);
      return connection;
    }

    test('the re-poll with the answer cursor takes the registration back without a read, and gets what came meanwhile, once and in order', async () => {
      const backplane = counting();
      const { dispatcher, ids } = await setup(backplane, { parkMs: 5000 });
      const room = 'room' as GroupName;
      await backplane.addMember(room, ids[0]!);
      const first = await listenOnce(dispatcher, [ids[0]!], null);
      const readsAfterFirst = backplane.reads;
      await backplane.publish(note(room, null, 1));
      const answer = first.answers[0]!;
      assert.deepEqual(
        answer.notifications.map((x) => x.payload),
        [1],
      );
      assert.equal(dispatcher.listenerCount, 0, 'a parked listener is not a waiting listen');
      assert.deepEqual(
        dispatcher.heldPushIds(),
        [ids[0]],
        'its push ID stays held (refreshed) until the park ends',
      );
      // Two notifications before the re-poll: both wait for it.
      await backplane.publish(note(room, null, 2));
      await backplane.publish(note(null, ids[0]!, 3));
      const second = await listenOnce(dispatcher, [ids[0]!], answer.cursor);
      assert.deepEqual(
        second.answers[0]?.notifications.map((x) => x.payload),
        [2, 3],
      );
      // Now nothing is pending: the re-poll is held, and the next notification answers it.
      const third = await listenOnce(dispatcher, [ids[0]!], second.answers[0].cursor);
      assert.equal(third.answers.length, 0);
      assert.equal(dispatcher.listenerCount, 1);
      await backplane.publish(note(room, null, 4));
      assert.deepEqual(
        third.answers[0]?.notifications.map((x) => x.payload),
        [4],
      );
      assert.equal(backplane.reads, readsAfterFirst, 'no re-poll read the backplane');
      dispatcher.stop();
    });

    test('membership changes while parked are applied: removed members hear nothing, added ones hear the group', async () => {
      const backplane = counting();
      const { dispatcher, ids } = await setup(backplane, { parkMs: 5000 });
      const room = 'room' as GroupName;
      await backplane.addMember(room, ids[0]!);
      const first = await listenOnce(dispatcher, [ids[0]!, ids[1]!], null);
      await backplane.publish(note(null, ids[1]!, 'direct'));
      const cursor = first.answers[0]!.cursor;
      await backplane.removeMember(room, ids[0]!);
      await backplane.addMember(room, ids[1]!);
      await backplane.publish(note(room, null, 'after'));
      const second = await listenOnce(dispatcher, [ids[0]!, ids[1]!], cursor);
      assert.deepEqual(
        second.answers[0]?.notifications.map((x) => [x.pushId, x.payload]),
        [[ids[1], 'after']],
      );
      dispatcher.stop();
    });

    test('a re-poll with another cursor or other push IDs takes the full path and reads exactly', async () => {
      const backplane = counting();
      const { dispatcher, ids } = await setup(backplane, { parkMs: 5000 });
      const start = await listenOnce(dispatcher, [ids[0]!], null); // held
      await backplane.publish(note(null, ids[0]!, 'a'));
      const afterA = start.answers[0]!.cursor;
      await backplane.publish(note(null, ids[0]!, 'b'));
      const reads = backplane.reads;
      // An older cursor (the client lost the answer): everything after it, from the log.
      const older = await listenOnce(dispatcher, [ids[0]!], afterA);
      assert.deepEqual(
        older.answers[0]?.notifications.map((x) => x.payload),
        ['b'],
      );
      assert.equal(backplane.reads, reads, 'the answer cursor itself still resumes');
      const again = await listenOnce(dispatcher, [ids[0]!, ids[1]!], afterA);
      assert.deepEqual(
        again.answers[0]?.notifications.map((x) => x.payload),
        ['b'],
      );
      assert.equal(backplane.reads, reads + 1, 'other push IDs read the log');
      dispatcher.stop();
    });

    test('past one answer of collected deliveries, the parked listener lets go and the re-poll reads the log', async () => {
      const backplane = counting();
      const { dispatcher, ids } = await setup(backplane, { parkMs: 5000, maxDeliveries: 3 });
      const first = await listenOnce(dispatcher, [ids[0]!], null);
      await backplane.publish(note(null, ids[0]!, 0));
      for (let i = 1; i <= 5; i++) await backplane.publish(note(null, ids[0]!, i));
      const reads = backplane.reads;
      const second = await listenOnce(dispatcher, [ids[0]!], first.answers[0]!.cursor);
      assert.deepEqual(
        second.answers[0]?.notifications.map((x) => x.payload),
        [1, 2, 3],
      );
      assert.equal(backplane.reads, reads + 1);
      const third = await listenOnce(dispatcher, [ids[0]!], second.answers[0].cursor);
      assert.deepEqual(
        third.answers[0]?.notifications.map((x) => x.payload),
        [4, 5],
      );
      dispatcher.stop();
    });

    test('a parked listener is dropped after the park time, and a newer listen replaces it silently', async () => {
      let now = Date.now();
      const backplane = counting();
      const { dispatcher, ids } = await setup(backplane, { parkMs: 1000, now: () => now });
      const first = await listenOnce(dispatcher, [ids[0]!], null);
      await backplane.publish(note(null, ids[0]!, 'x'));
      assert.equal(first.answers.length, 1);
      now += 1500;
      await new Promise((resolve) => setTimeout(resolve, 600)); // the 250 ms ticker
      const reads = backplane.reads;
      const late = await listenOnce(dispatcher, [ids[0]!], first.answers[0]!.cursor);
      assert.equal(late.answers.length, 0, 'held, nothing new');
      assert.equal(backplane.reads, reads + 1, 'the parked registration was gone');
      assert.equal(first.answers.length, 1, 'the answered connection hears nothing more');
      dispatcher.stop();
    });

    test('a push ID that expires while parked is reported to the re-poll', async () => {
      // Nodes park for at most half a TTL and touch released push IDs within a third of one,
      // so this needs a push ID left untouched on purpose: the expiry event must unpark it.
      const backplane = counting(300);
      const { dispatcher, ids } = await setup(backplane, { parkMs: 5000 });
      await backplane.addMember('room' as GroupName, ids[0]!);
      const first = await listenOnce(dispatcher, [ids[0]!], null);
      await backplane.publish(note(null, ids[0]!, 'x'));
      await new Promise((resolve) => setTimeout(resolve, 700));
      await backplane.touch([]); // expiry is noticed on the next backplane call
      const second = await listenOnce(dispatcher, [ids[0]!], first.answers[0]!.cursor);
      assert.deepEqual(second.answers[0]?.expired, [ids[0]]);
      dispatcher.stop();
    });
  });
});
