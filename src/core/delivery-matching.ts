import type { ClusterEvent } from './events.js';
import type { GroupName } from './group-name.js';
import type { Delivery } from './listen-answer.js';
import type { PushId } from './push-id.js';

/** "Was this push ID a member of that group when notification `seq` was published?" */
export type MembershipAt = (group: GroupName, pushId: PushId, seq: number) => boolean;

/**
 * The deliveries one log event makes to a listener on `pushIds`, in the listen's push-ID order:
 * a direct notification to one of them, or a group notification to each that was a member when
 * it was published. Membership events deliver nothing. Every backplane's read uses this, so they
 * all answer the same question the same way.
 */
export function deliveriesOf(
  event: ClusterEvent,
  pushIds: readonly PushId[],
  wanted: ReadonlySet<PushId>,
  wasMemberAt: MembershipAt,
): Delivery[] {
  if (event.type !== 'notification') return [];
  if (event.pushId !== null)
    return wanted.has(event.pushId) ? [{ event, pushId: event.pushId }] : [];
  const group = event.group;
  if (group === null) return [];
  const out: Delivery[] = [];
  for (const pushId of pushIds) {
    if (wasMemberAt(group, pushId, event.seq)) out.push({ event, pushId });
  }
  return out;
}
