/**
 * Presence of a push ID, as a pure model: the record the backplane stores per push ID, its
 * effective state at a given instant, and the transitions the cluster protocol applies to it
 * with a compare-and-set. Clocks are passed in; nothing here does I/O.
 *
 * The record only changes on NODE-level transitions (a node started or stopped holding the
 * push ID, a holder node died, a deadline passed), never on every listen.
 */
import { parseJsonObject } from './json-object.js';

export type PresenceState = 'listening' | 'idle' | 'expired';

export interface PresenceRecord {
  /** The state last decided (once, by a compare-and-set) for the cluster. */
  readonly state: PresenceState;
  /** When that state began (ms since the epoch). */
  readonly since: number;
  /** Nodes holding the push ID now (a listener registered there). */
  readonly holders: readonly string[];
  /** When the last holder let go (ms); null while it was never held. */
  readonly releasedAt: number | null;
  /**
   * State changes decided but not yet acknowledged by the webhook receiver (empty without
   * webhooks). Kept in the record, so they outlive the log's retention and the node that
   * decided them: another node takes them over when `by` dies.
   */
  readonly outbox: readonly OutboxEvent[];
}

/** A webhook event waiting for its receiver's 2xx. */
export interface OutboxEvent {
  /** Unique: receivers can dedupe by it across a failover (a new batch, a new delivery id). */
  readonly id: string;
  readonly state: PresenceState;
  readonly at: number;
  /** The node that sends it. */
  readonly by: string;
}

/** A state change decided by a transition: what a webhook reports. */
export interface PresenceChange {
  readonly state: PresenceState;
  readonly at: number;
}

export interface PresenceClock {
  readonly now: number;
  readonly graceMs: number;
  readonly ttlMs: number;
  /** When a holder node died (ms), or null while it is alive. */
  readonly deathOf: (nodeId: string) => number | null;
}

/** What GET /api/push-ids/{id} reports. */
export interface PresenceView {
  readonly state: PresenceState;
  readonly since: number;
}

/** A freshly minted push ID: idle since now, held by nobody. */
export function mintedRecord(now: number): PresenceRecord {
  return { state: 'idle', since: now, holders: [], releasedAt: null, outbox: [] };
}

/** The moment the last hold ended, counting dead holders as ended at their death. */
function holdEnd(record: PresenceRecord, clock: PresenceClock): number | null {
  let end = record.releasedAt;
  for (const node of record.holders) {
    const death = clock.deathOf(node);
    if (death === null) return null; // a live holder: the hold has not ended
    end = end === null ? death : Math.max(end, death);
  }
  return end;
}

/**
 * The state at `clock.now`. `live` is the push ID's liveness (false: past its TTL). A record's
 * stored state may lag a deadline that passed (the sweep writes it shortly after); every node
 * computes the same view from the same record, so the answer does not depend on that lag.
 */
export function presenceAt(
  record: PresenceRecord,
  live: boolean,
  clock: PresenceClock,
): PresenceView {
  if (record.state === 'expired') return { state: 'expired', since: record.since };
  const end = holdEnd(record, clock);
  if (!live) {
    const last = end ?? record.since;
    return { state: 'expired', since: Math.min(clock.now, last + clock.ttlMs) };
  }
  if (record.state === 'idle' && (record.holders.length === 0 || end !== null)) {
    return { state: 'idle', since: record.since };
  }
  if (end === null) {
    // Held by a live node, or an idle record that is being taken (the hold wrote `listening`).
    return { state: 'listening', since: record.since };
  }
  if (clock.now < end + clock.graceMs) return { state: 'listening', since: record.since };
  return { state: 'idle', since: end + clock.graceMs };
}

/** A node started holding the push ID. */
export function withHold(
  record: PresenceRecord,
  node: string,
  clock: PresenceClock,
): { record: PresenceRecord; changes: PresenceChange[] } {
  // An expired push ID never comes back (a listen reports it under `expired`).
  if (record.state === 'expired') return { record, changes: [] };
  const view = presenceAt(record, true, clock);
  const holders = record.holders.includes(node) ? record.holders : [...record.holders, node];
  const changes: PresenceChange[] = [];
  if (view.state !== 'listening') {
    // An idle the sweep had not written yet is reported before the listening that ends it.
    if (record.state === 'listening') changes.push({ state: 'idle', at: view.since });
    changes.push({ state: 'listening', at: clock.now });
    return { record: { ...record, state: 'listening', since: clock.now, holders }, changes };
  }
  return { record: { ...record, holders }, changes };
}

/** A node stopped holding the push ID at `at` (its last listener there ended then). */
export function withRelease(record: PresenceRecord, node: string, at: number): PresenceRecord {
  if (!record.holders.includes(node)) return record;
  const releasedAt = record.releasedAt === null ? at : Math.max(record.releasedAt, at);
  return { ...record, holders: record.holders.filter((h) => h !== node), releasedAt };
}

/**
 * Writes down what time has decided: dead holders removed (their hold ended at their death),
 * and the effective state stored when it differs from the stored one.
 */
export function settled(
  record: PresenceRecord,
  live: boolean,
  clock: PresenceClock,
): { record: PresenceRecord; changes: PresenceChange[] } {
  const view = presenceAt(record, live, clock);
  let next = record;
  const dead = record.holders.filter((node) => clock.deathOf(node) !== null);
  if (dead.length > 0) {
    let releasedAt = record.releasedAt;
    for (const node of dead) {
      const death = clock.deathOf(node) as number;
      releasedAt = releasedAt === null ? death : Math.max(releasedAt, death);
    }
    next = { ...next, holders: next.holders.filter((h) => !dead.includes(h)), releasedAt };
  }
  const changes: PresenceChange[] = [];
  if (view.state !== record.state) {
    if (view.state === 'expired' && record.state === 'listening') {
      const idle = presenceAt(record, true, clock);
      if (idle.state === 'idle') changes.push({ state: 'idle', at: idle.since });
    }
    changes.push({ state: view.state, at: view.since });
    next = { ...next, state: view.state, since: view.since };
  }
  return { record: next, changes };
}

/**
 * When the sweep should look at the record again (ms), or null when only a node-level
 * transition can change it (a live holder). An idle push ID is looked at once its TTL may have
 * run out, to record its expiry.
 */
export function nextDue(record: PresenceRecord, clock: PresenceClock): number | null {
  if (record.state === 'expired') return null;
  const end = holdEnd(record, clock);
  if (record.holders.length > 0 && end === null) return null;
  if (record.state === 'listening') return (end ?? record.since) + clock.graceMs;
  return Math.max(clock.now, (end ?? record.since) + clock.ttlMs) + 1000;
}

export function encodePresence(record: PresenceRecord): string {
  return JSON.stringify({
    s: record.state,
    t: record.since,
    h: record.holders,
    r: record.releasedAt,
    ...(record.outbox.length > 0
      ? { o: record.outbox.map((e) => [e.id, e.state, e.at, e.by]) }
      : {}),
  });
}

const STATES: readonly string[] = ['listening', 'idle', 'expired'];

/** The stored text read back; null when it is not a record of ours (never trusted by a cast). */
export function decodePresence(text: string): PresenceRecord | null {
  const value = parseJsonObject(text);
  if (value === null) return null;
  const { s, t, h, r, o } = value;
  if (typeof s !== 'string' || !STATES.includes(s) || typeof t !== 'number') return null;
  if (!Array.isArray(h) || !h.every((node): node is string => typeof node === 'string')) {
    return null;
  }
  if (r !== null && typeof r !== 'number') return null;
  const outbox: OutboxEvent[] = [];
  if (o !== undefined) {
    if (!Array.isArray(o)) return null;
    for (const item of o as unknown[]) {
      if (!Array.isArray(item)) return null;
      const [id, state, at, by] = item as unknown[];
      if (typeof id !== 'string' || typeof state !== 'string' || !STATES.includes(state)) {
        return null;
      }
      if (typeof at !== 'number' || typeof by !== 'string') return null;
      outbox.push({ id, state: state as PresenceState, at, by });
    }
  }
  return { state: s as PresenceState, since: t, holders: h, releasedAt: r, outbox };
}
