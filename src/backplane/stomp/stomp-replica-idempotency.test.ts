import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ClusterEvent, NotificationDraft, NotificationId } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { Batch, Command } from './stomp-protocol.js';
import { StompReplica, type ReplicaOptions } from './stomp-replica.js';

const T0 = 1_700_000_000_000;
const OPTIONS: ReplicaOptions = { retentionMs: 600_000, maxLogBytes: 1 << 30, pushIdTtlMs: 60_000 };
const GROUP = 'idem.group' as GroupName;

function stamped(key: string, id: string): NotificationDraft {
  return {
    type: 'notification',
    id: id as NotificationId,
    group: GROUP,
    pushId: null,
    payloadJson: JSON.stringify(key),
    publishedAt: T0,
    idem: { key, fingerprint: `fp-${key}` },
  };
}

const notify = (d: NotificationDraft): Command => ({ k: 'notify', c: d.id, draft: d });

function eventsOf(batch: Batch): ClusterEvent[] {
  return batch.entries.flatMap((e) => (e.k === 'event' ? [e.event] : []));
}

/** Builds and applies the next batch on the sequencer; returns it as the broker carries it. */
function step(sequencer: StompReplica, commands: readonly Command[], now: number): Batch {
  const batch = sequencer.buildBatch(commands, now);
  assert.ok(batch);
  sequencer.apply(batch);
  return JSON.parse(JSON.stringify(batch)) as Batch;
}

test('idempotency keys: a repeat is answered with the first seq, in the same batch, later, and by a new sequencer that reloaded the log', () => {
  const a = new StompReplica(OPTIONS);
  a.startEpoch('e1');
  const first = stamped('k1', 'n1');
  const batch = step(a, [notify(first), notify(stamped('k1', 'same-batch'))], T0);
  const [event] = eventsOf(batch);
  assert.equal(eventsOf(batch).length, 1, 'one event for the key');
  assert.deepEqual(batch.entries[1], { k: 'ok', c: 'same-batch', seq: event!.seq });
  const checkpoint = a.checkpoint(T0 + 1);
  const later = step(a, [notify(stamped('k2', 'n2'))], T0 + 2);
  // A new sequencer that starts from the log queue (batches before the checkpoint, the
  // checkpoint, the batches after it) knows both keys: they live in the events themselves.
  const b = new StompReplica(OPTIONS);
  assert.deepEqual(b.catchUp([batch, checkpoint, later]), { kind: 'reloaded' });
  for (const [key, seq, id] of [
    ['k1', event!.seq, 'n1'],
    ['k2', eventsOf(later)[0]!.seq, 'n2'],
  ] as const) {
    const repeat = stamped(key, `repeat-${key}`);
    assert.deepEqual(b.buildBatch([notify(repeat)], T0 + 3)?.entries, [
      { k: 'ok', c: repeat.id, seq },
    ]);
    assert.deepEqual(b.idempotencyRecord(key), {
      id,
      fingerprint: `fp-${key}`,
      seq,
      at: key === 'k1' ? T0 : T0 + 2,
    });
  }
  // Past retention the key is new again.
  const entries = b.buildBatch(
    [notify(stamped('k1', 'n3'))],
    T0 + OPTIONS.retentionMs + 1,
  )?.entries;
  assert.equal(entries?.[0]?.k, 'event');
});
