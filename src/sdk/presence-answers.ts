import { isPushId, type PushId } from '../core/push-id.js';
import type { GroupName } from '../core/group-name.js';
import { isRecord } from './call-arguments.js';
import { unexpected } from './client-error.js';

/** `GET /api/push-ids/{pushId}` (docs/protocol.md, "Presence"). */
export interface PushIdPresence {
  readonly pushId: PushId;
  readonly state: 'listening' | 'idle' | 'expired';
  /** When the state began (ISO-8601). */
  readonly since: string;
  readonly groups: readonly GroupName[];
}

/** `GET /api/groups/{group}/presence`. */
export interface GroupPresence {
  /** How many push IDs are members of the group. */
  readonly members: number;
  /** The members listening now (held on some node, or within the presence grace). */
  readonly listening: readonly PushId[];
}

const STATES: readonly unknown[] = ['listening', 'idle', 'expired'];

/** The answer checked before use: what a server answers is not trusted by a cast. */
export function pushIdPresenceOf(body: unknown, path: string): PushIdPresence {
  if (
    isRecord(body) &&
    isPushId(body.pushId) &&
    STATES.includes(body.state) &&
    typeof body.since === 'string' &&
    Array.isArray(body.groups) &&
    body.groups.every((group) => typeof group === 'string')
  ) {
    return body as unknown as PushIdPresence;
  }
  throw unexpected(`GET ${path} did not answer {"pushId", "state", "since", "groups"}.`);
}

export function groupPresenceOf(body: unknown, path: string): GroupPresence {
  if (
    isRecord(body) &&
    typeof body.members === 'number' &&
    Array.isArray(body.listening) &&
    body.listening.every(isPushId)
  ) {
    return { members: body.members, listening: body.listening };
  }
  throw unexpected(`GET ${path} did not answer {"members", "listening"}.`);
}
