import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { GroupName } from '../../core/group-name.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import { isPushId, type PushId } from '../../core/push-id.js';
import type { ChangeOutcome, MembershipChange } from '../driver.js';
import { CALL_TIMEOUT_MS } from '../protocol/backplane-call.js';
import { decodeEntry, encodeDraft } from '../protocol/event-codec.js';
import {
  applyToRecord,
  decodeRecord,
  encodeRecord,
  type HistoryRecord,
} from './nats-history-record.js';

const CHANGE_ATTEMPTS = 20;
/** A membership event seen on the tail is checked this long after, once its writer is done. */
const REPAIR_DELAY_MS = 2000;

/** What membership needs from the NATS connection. */
export interface NatsHandles {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly stream: string;
  /** The subject of a push ID's membership events. */
  subjectOf(pushId: PushId): string;
  readonly history: KV;
  readonly members: KV;
  readonly live: KV;
}

interface Loaded {
  readonly record: HistoryRecord;
  /** The seq of the push ID's last membership event in the stream (0: none retained). */
  readonly last: number;
  readonly revision: number | null;
}

/**
 * Membership on NATS JetStream. Each push ID's membership events go to its own subject of the
 * log stream, appended with the expected last sequence of that subject: JetStream refuses the
 * append if another node changed the push ID meanwhile, so check-and-append is atomic per push
 * ID (the conditional append of the driver contract). The `history` bucket holds each push ID's
 * MembershipHistory up to a seq; readers apply what the stream has after it, so a writer that
 * died before writing the record loses nothing. `members` keys (`<group b64>.<pushId>` →
 * `<version>|<0|1>`) are a view for `members()`, and only move forward.
 */
export class NatsMembership {
  private readonly repairs = new Set<NodeJS.Timeout>();

  constructor(private readonly nats: NatsHandles) {}

  async change(change: MembershipChange): Promise<ChangeOutcome> {
    const { pushId } = change;
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      const loaded = await this.load(pushId);
      const { history } = loaded.record;
      let groups: GroupName[];
      switch (change.type) {
        case 'member-added':
          if (!(await this.isLive(pushId))) return { kind: 'not-live' };
          groups = [change.group];
          if (history.isMember(change.group)) return this.unchanged(pushId, loaded, groups);
          break;
        case 'member-removed':
          groups = [change.group];
          if (!history.isMember(change.group)) return this.unchanged(pushId, loaded, groups);
          break;
        case 'push-id-expired':
          if (await this.isLive(pushId)) return { kind: 'unchanged' };
          groups = history.openGroups();
          if (groups.length === 0) return { kind: 'unchanged' };
          break;
      }
      let seq: number;
      try {
        const ack = await this.nats.js.publish(this.nats.subjectOf(pushId), encodeDraft(change), {
          expect: { lastSubjectSequence: loaded.last },
          timeout: CALL_TIMEOUT_MS,
        });
        seq = ack.seq;
      } catch (error) {
        if (error instanceof Error && /wrong last sequence/i.test(error.message)) continue;
        throw error;
      }
      applyToRecord(loaded.record, { ...change, seq });
      await this.save(pushId, loaded);
      await this.writeViews(pushId, loaded.record.history, loaded.record.upTo, groups);
      return { kind: 'appended', seq };
    }
    throw new Error(`push ID ${pushId} changed ${CHANGE_ATTEMPTS} times during one change`);
  }

  async histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    const out = new Map<PushId, MembershipHistory>();
    await Promise.all(
      pushIds.map(async (pushId) => {
        const { record } = await this.load(pushId);
        if (!record.history.isEmpty) out.set(pushId, record.history);
      }),
    );
    return out;
  }

  async members(group: GroupName): Promise<PushId[]> {
    const entries = await this.scan(`${groupKey(group)}.*`);
    return entries.filter((m) => m.open).map((m) => m.pushId);
  }

  /** Push IDs with an open membership whose live key nats-server has dropped. */
  async dueForExpiry(limit: number): Promise<PushId[]> {
    const candidates = new Set<PushId>();
    for (const member of await this.scan('>')) if (member.open) candidates.add(member.pushId);
    const due: PushId[] = [];
    for (const pushId of candidates) {
      if (due.length >= limit) break;
      if (!(await this.isLive(pushId))) due.push(pushId);
    }
    return due;
  }

  /** Deletes closed `members` keys older than the retention window. */
  async trim(retentionMs: number): Promise<void> {
    for (const member of await this.scan('>')) {
      if (member.open || Date.now() - member.created.getTime() <= retentionMs) continue;
      await this.nats.members
        .delete(member.key, { previousSeq: member.revision })
        .catch(() => undefined);
    }
  }

  /**
   * A membership event seen on the tail: shortly after, check that its push ID's record and
   * views include it, and write them if its node died before it could.
   */
  seen(body: string, seq: number): void {
    const event = decodeEntry({ seq, body });
    if (event === null || event.type === 'notification') return;
    const timer = setTimeout(() => {
      this.repairs.delete(timer);
      void this.repair(event.pushId, seq).catch(() => undefined);
    }, REPAIR_DELAY_MS);
    timer.unref();
    this.repairs.add(timer);
  }

  stop(): void {
    for (const timer of this.repairs) clearTimeout(timer);
    this.repairs.clear();
  }

  private async repair(pushId: PushId, seq: number): Promise<void> {
    const stored = await this.nats.history.get(pushId);
    if (decodeRecord(stored?.operation === 'PUT' ? stored.string() : null).upTo >= seq) return;
    const loaded = await this.load(pushId);
    const { history, upTo } = loaded.record;
    await this.writeViews(pushId, history, upTo, [...history.encode().keys()]);
  }

  private async isLive(pushId: PushId): Promise<boolean> {
    return (await this.nats.live.get(pushId))?.operation === 'PUT';
  }

  /** The push ID's record, brought up to its last membership event in the stream. */
  private async load(pushId: PushId): Promise<Loaded> {
    const subject = this.nats.subjectOf(pushId);
    const [stored, lastMessage] = await Promise.all([
      this.nats.history.get(pushId),
      this.nats.jsm.direct.getMessage(this.nats.stream, { last_by_subj: subject }),
    ]);
    const isPut = stored?.operation === 'PUT';
    const record = decodeRecord(isPut ? stored.string() : null);
    const loaded: Loaded = {
      record,
      last: lastMessage?.seq ?? 0,
      revision: stored === null ? null : stored.revision,
    };
    if (record.upTo >= loaded.last) return loaded;
    let from = record.upTo + 1;
    while (from <= loaded.last) {
      const message = await this.nats.jsm.direct.getMessage(this.nats.stream, {
        seq: from,
        next_by_subj: subject,
      });
      if (message === null || message.seq > loaded.last) break;
      const event = decodeEntry({ seq: message.seq, body: message.string() });
      if (event !== null) applyToRecord(record, event);
      record.upTo = Math.max(record.upTo, message.seq);
      from = message.seq + 1;
    }
    await this.save(pushId, loaded).catch(() => undefined);
    return loaded;
  }

  /** Writes the record unless a newer one is already stored. */
  private async save(pushId: PushId, loaded: Loaded): Promise<void> {
    const value = encodeRecord(loaded.record);
    let revision = loaded.revision;
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      try {
        if (revision === null) await this.nats.history.create(pushId, value);
        else await this.nats.history.update(pushId, value, revision);
        return;
      } catch {
        const current = await this.nats.history.get(pushId);
        if (current === null) {
          revision = null;
          continue;
        }
        const stored = decodeRecord(current.operation === 'PUT' ? current.string() : null);
        if (stored.upTo >= loaded.record.upTo) return;
        revision = current.revision;
      }
    }
  }

  private async unchanged(
    pushId: PushId,
    loaded: Loaded,
    groups: readonly GroupName[],
  ): Promise<ChangeOutcome> {
    // The views may lag behind the record (a writer that died): bring them up while here.
    await this.writeViews(pushId, loaded.record.history, loaded.record.upTo, groups);
    return { kind: 'unchanged' };
  }

  /** A members key only moves forward: a lower version never overwrites a higher one. */
  private async writeViews(
    pushId: PushId,
    history: MembershipHistory,
    version: number,
    groups: readonly GroupName[],
  ): Promise<void> {
    for (const group of groups) {
      const key = `${groupKey(group)}.${pushId}`;
      const value = `${version}|${history.isMember(group) ? 1 : 0}`;
      for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
        const current = await this.nats.members.get(key);
        try {
          if (current === null) await this.nats.members.create(key, value);
          else if (current.string() === value) break;
          else if (Number(current.string().split('|')[0]) > version) break;
          else await this.nats.members.update(key, value, current.revision);
          break;
        } catch {
          continue;
        }
      }
    }
  }

  private async scan(
    filter: string,
  ): Promise<{ key: string; pushId: PushId; open: boolean; created: Date; revision: number }[]> {
    // A key written while the listing runs can be listed twice.
    const keys = new Set<string>();
    for await (const key of await this.nats.members.keys(filter)) keys.add(key);
    const out: { key: string; pushId: PushId; open: boolean; created: Date; revision: number }[] =
      [];
    await Promise.all(
      [...keys].map(async (key) => {
        const entry = await this.nats.members.get(key);
        const pushId = key.slice(key.indexOf('.') + 1);
        if (entry?.operation !== 'PUT' || !isPushId(pushId)) return;
        out.push({
          key,
          pushId,
          open: entry.string().endsWith('|1'),
          created: entry.created,
          revision: entry.revision,
        });
      }),
    );
    return out;
  }
}

/** Group names may hold `:`, `~` and `.`, which KV keys cannot (`.` separates tokens). */
function groupKey(group: GroupName): string {
  return Buffer.from(group).toString('base64url');
}
