import { randomBytes } from 'node:crypto';
import { EventLog } from '../../core/event-log.js';
import { IdempotencyIndex } from '../../core/idempotency-index.js';
import type { ClusterEvent, EventDraft } from '../../core/events.js';
import { MembershipIndex } from '../../core/membership-index.js';
import { PushIdLiveness } from '../../core/push-id-liveness.js';
import { MemoryPresence } from './memory-presence.js';
import type { BackplaneOptions, NodeInfo } from '../backplane.js';
import type { DriverLink, LogEntry } from '../driver.js';

/**
 * The whole cluster state of the memory backplane, held in this process: the log window,
 * membership, push-ID liveness and the directory. Every MemoryDriver connected to one store is a
 * node of one cluster (that is how several nodes share it in one process, and how `--workers`
 * shares it through the primary).
 */
export class MemoryStore {
  readonly epoch = randomBytes(6).readUIntBE(0, 6).toString(36);
  readonly log: EventLog;
  readonly membership = new MembershipIndex();
  readonly liveness: PushIdLiveness;
  /** Idempotency keys of the notifications within retention. */
  readonly idempotency: IdempotencyIndex;
  readonly directory = new Map<string, { info: Omit<NodeInfo, 'lastSeen'>; at: number }>();
  readonly links = new Set<DriverLink>();
  readonly now: () => number;
  readonly presence: MemoryPresence;

  constructor(options: BackplaneOptions) {
    this.now = options.now ?? Date.now;
    this.presence = new MemoryPresence(this.now);
    this.log = new EventLog({
      retentionMs: options.retentionMs,
      maxBytes: options.maxLogBytes,
      maxEvents: Number.MAX_SAFE_INTEGER,
    });
    this.liveness = new PushIdLiveness(options.pushIdTtlMs);
    this.idempotency = new IdempotencyIndex(options.retentionMs);
  }

  /** Assigns the next seq, stores the event and hands it to every connected driver's tail. */
  append(draft: EventDraft): ClusterEvent {
    // The draft's own fields, plus the seq this log gives it.
    const event = { ...draft, seq: this.log.headSeq + 1 } as ClusterEvent;
    this.log.append(event, this.now());
    this.idempotency.note(event, this.now());
    for (const link of this.links) link.entry(this.epoch, { seq: event.seq, body: event });
    return event;
  }

  /** Trims the log and forgets membership history and presence records nobody can read any more. */
  trim(): void {
    this.log.trim(this.now());
    this.idempotency.forgetOld(this.now());
    this.membership.forgetBefore(this.log.oldestResumableSeq);
    this.presence.sweep();
  }
}

/** Entries `first..last` of a log window held in memory (empty when they are gone). */
export function windowEntries(log: EventLog, first: number, last: number): LogEntry[] {
  const read = log.readSince(first - 1, last - first + 1);
  return read.kind === 'gone' ? [] : read.events.map((event) => ({ seq: event.seq, body: event }));
}
