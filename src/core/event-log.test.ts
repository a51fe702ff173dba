import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EventLog } from './event-log.js';
import type { ClusterEvent, NotificationId } from './events.js';
import type { GroupName } from './group-name.js';

function note(seq: number, payloadJson = 'null'): ClusterEvent {
  return {
    type: 'notification',
    seq,
    id: `n${seq}` as NotificationId,
    group: 'g' as GroupName,
    pushId: null,
    payloadJson,
    publishedAt: 0,
  };
}

const roomy = { retentionMs: 60_000, maxBytes: 1 << 30, maxEvents: 1_000_000 };

describe('EventLog', () => {
  test('reads exactly the events after a position, in order', () => {
    const log = new EventLog(roomy);
    for (let seq = 1; seq <= 5; seq++) log.append(note(seq), 0);
    const read = log.readSince(2);
    assert.equal(read.kind, 'events');
    assert.deepEqual(read.kind === 'events' ? read.events.map((e) => e.seq) : [], [3, 4, 5]);
    const limited = log.readSince(0, 2);
    assert.deepEqual(limited.kind === 'events' ? limited.events.map((e) => e.seq) : [], [1, 2]);
  });

  test('reading at the head returns nothing, not gone', () => {
    const log = new EventLog(roomy);
    log.append(note(1), 0);
    assert.deepEqual(log.readSince(1), { kind: 'events', events: [] });
  });

  test('refuses an append that would leave a gap', () => {
    const log = new EventLog(roomy);
    log.append(note(1), 0);
    assert.throws(() => {
      log.append(note(3), 0);
    }, /gap/);
  });

  test('drops events older than the retention window and reports readers behind it as gone', () => {
    const log = new EventLog({ ...roomy, retentionMs: 1000 });
    log.append(note(1), 0);
    log.append(note(2), 700);
    log.append(note(3), 1600); // trims seq 1 (appended at 0 < 600)
    assert.equal(log.oldestResumableSeq, 1);
    assert.deepEqual(log.readSince(0), { kind: 'gone' });
    const read = log.readSince(1);
    assert.deepEqual(read.kind === 'events' ? read.events.map((e) => e.seq) : null, [2, 3]);
  });

  test('keeps within the byte budget by dropping the oldest events', () => {
    const log = new EventLog({ ...roomy, maxBytes: 1000 });
    for (let seq = 1; seq <= 10; seq++) log.append(note(seq, 'x'.repeat(200)), 0);
    assert.ok(log.retainedBytes <= 1000, `retained ${log.retainedBytes}`);
    assert.ok(log.size < 10 && log.size > 0);
    assert.equal(log.oldestResumableSeq, 10 - log.size);
  });

  test('a position beyond the head is gone (it came from another log)', () => {
    const log = new EventLog(roomy);
    log.append(note(1), 0);
    assert.deepEqual(log.readSince(7), { kind: 'gone' });
  });

  test('restartAt continues numbering and forgets the past', () => {
    const log = new EventLog(roomy);
    log.append(note(1), 0);
    log.restartAt(41);
    log.append(note(42), 0);
    assert.deepEqual(log.readSince(1), { kind: 'gone' });
    assert.equal(log.headSeq, 42);
  });

  test('stays correct across compaction of a long run of appends', () => {
    const log = new EventLog({ ...roomy, maxEvents: 100 });
    for (let seq = 1; seq <= 5000; seq++) log.append(note(seq), 0);
    const read = log.readSince(4950);
    assert.deepEqual(
      read.kind === 'events' ? read.events.map((e) => e.seq) : null,
      Array.from({ length: 50 }, (_, i) => 4951 + i),
    );
  });
});
