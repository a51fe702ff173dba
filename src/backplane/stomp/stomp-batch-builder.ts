/**
 * The sequencer's judgement: turns commands into the entries of the next batch, judged against
 * its replica plus the batch itself (a push ID registered earlier in the same batch may join a
 * group later in it; a presence record written earlier in it has its new version). Pure.
 */
import type { ClusterEvent } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { PushId } from '../../core/push-id.js';
import type { Command, Entry } from './stomp-protocol.js';

/** The replica as the sequencer judges against it (the state after the last batch). */
export interface SequencerView {
  headSeq(): number;
  isLive(pushId: PushId, now: number): boolean;
  isMember(group: GroupName, pushId: PushId): boolean;
  inAnyGroup(pushId: PushId): boolean;
  /** A command applied recently (a redelivery), with the seq it got. */
  recent(c: string): { readonly seq: number | undefined } | undefined;
  /** The seq of the notification first appended with this idempotency key, within retention. */
  idempotentSeq(key: string, now: number): number | undefined;
  presenceVersion(pushId: PushId): number;
}

/** The entries for `commands` (sync and history commands are left to the caller). */
export function batchEntries(
  view: SequencerView,
  commands: readonly Command[],
  now: number,
): Entry[] {
  const entries: Entry[] = [];
  const seen = new Set<string>();
  const registered = new Set<PushId>();
  const memberNow = new Map<string, boolean>();
  const expiredNow = new Set<PushId>();
  const stampedNow = new Map<string, number>();
  const presenceNow = new Map<PushId, number>();
  let seq = view.headSeq();
  const live = (id: PushId): boolean => registered.has(id) || view.isLive(id, now);
  const isMember = (group: GroupName, id: PushId): boolean =>
    memberNow.get(`${group}\n${id}`) ?? view.isMember(group, id);
  const event = (c: string | undefined, draft: Record<string, unknown>): void => {
    seq += 1;
    entries.push({ k: 'event', c, event: { ...draft, seq } as unknown as ClusterEvent });
  };
  for (const command of commands) {
    if (command.k === 'sync' || command.k === 'history') continue;
    if (seen.has(command.c)) continue;
    seen.add(command.c);
    const before = view.recent(command.c);
    if (before) {
      // Numbered already by a sequencer that died before acknowledging it: answer, do not repeat.
      entries.push({ k: 'ok', c: command.c, seq: before.seq });
      continue;
    }
    switch (command.k) {
      case 'notify': {
        // An idempotency key seen within retention (or earlier in this batch): answer its seq.
        const key = command.draft.idem?.key;
        const held =
          key === undefined ? undefined : (stampedNow.get(key) ?? view.idempotentSeq(key, now));
        if (held !== undefined) {
          entries.push({ k: 'ok', c: command.c, seq: held });
          break;
        }
        event(command.c, { ...command.draft, type: 'notification' });
        if (key !== undefined) stampedNow.set(key, seq);
        break;
      }
      case 'register':
        for (const id of command.ids) registered.add(id);
        entries.push({ k: 'live', c: command.c, ids: command.ids });
        break;
      case 'touch': {
        const alive = command.ids.filter(live);
        const expired = command.ids.filter((id) => !live(id));
        for (const id of alive) registered.add(id);
        entries.push({ k: 'live', c: command.c, ids: alive, expired });
        break;
      }
      case 'add':
        if (!live(command.pushId)) {
          entries.push({
            k: 'rejected',
            c: command.c,
            code: 'push_id_not_found',
            message: `Push ID ${command.pushId} is unknown or expired; mint a new one with POST /api/push-ids.`,
          });
        } else if (isMember(command.group, command.pushId)) {
          entries.push({ k: 'ok', c: command.c });
        } else {
          memberNow.set(`${command.group}\n${command.pushId}`, true);
          event(command.c, { type: 'member-added', group: command.group, pushId: command.pushId });
        }
        break;
      case 'remove':
        if (isMember(command.group, command.pushId)) {
          memberNow.set(`${command.group}\n${command.pushId}`, false);
          event(command.c, {
            type: 'member-removed',
            group: command.group,
            pushId: command.pushId,
          });
        } else {
          entries.push({ k: 'ok', c: command.c });
        }
        break;
      case 'probe':
        entries.push({ k: 'ok', c: command.c });
        break;
      case 'expire':
        // Judged here, on the sequencer's clock: a member whose time ran out leaves every group.
        if (
          live(command.pushId) ||
          expiredNow.has(command.pushId) ||
          !view.inAnyGroup(command.pushId)
        ) {
          entries.push({ k: 'ok', c: command.c });
        } else {
          expiredNow.add(command.pushId);
          event(command.c, { type: 'push-id-expired', pushId: command.pushId });
        }
        break;
      case 'presence': {
        const { pushId, expected, write } = command;
        const version = presenceNow.get(pushId) ?? view.presenceVersion(pushId);
        if (version !== expected) {
          // The record changed meanwhile: nothing is stored, the caller reads again.
          entries.push({ k: 'ok', c: command.c });
          break;
        }
        presenceNow.set(pushId, version + 1);
        entries.push({ k: 'presence', c: command.c, pushId, version: version + 1, write });
        break;
      }
    }
  }
  return entries;
}
