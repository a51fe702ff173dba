import type { Cursor } from './cursor.js';
import type { NotificationEvent } from './events.js';
import type { GroupName } from './group-name.js';
import type { PushId } from './push-id.js';

/** Whose notification history: a group's, or a push ID's (see docs/protocol.md, "History"). */
export type HistoryTarget =
  | { readonly kind: 'group'; readonly group: GroupName }
  | { readonly kind: 'push-id'; readonly pushId: PushId };

/** One notification of a history: for a push ID's, `pushId` is that push ID. */
export interface HistoryItem {
  readonly event: NotificationEvent;
  readonly pushId: PushId | null;
}

export interface HistoryPage {
  /** Oldest first. */
  readonly items: readonly HistoryItem[];
  /** Reading on from here returns what came after this page. */
  readonly cursor: Cursor;
  /** `since` was older than retention, or of another log epoch: the page starts at the head. */
  readonly reset: boolean;
}
