import type { Cursor, CursorPosition } from '../core/cursor.js';
import type { NotificationId } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import type { PushId } from '../core/push-id.js';
import type { ConnectionCounter, ListenerConnection } from '../transports/listener-connection.js';

export interface ClusterNodeView {
  readonly id: string;
  readonly connections: number;
  readonly startedAt: string;
  readonly lastSeen: string;
}

/**
 * What the HTTP surface needs from a node. Implemented by EpushNode; the routes validate input
 * and render answers, this does the work. Failures are EpushErrors from the catalogue.
 */
export interface PushService {
  /** Open listener connections, counted by the transports. */
  readonly connections: ConnectionCounter;
  createPushIds(count: number): Promise<PushId[]>;
  addMember(group: GroupName, pushId: PushId): Promise<void>;
  removeMember(group: GroupName, pushId: PushId): Promise<void>;
  members(group: GroupName): Promise<PushId[]>;
  /**
   * `payloadJson` is the payload already serialized (`null` when none was sent). `id` is given
   * by callers whose retries must not notify twice (the JMS ingress); else one is minted.
   */
  notifyGroup(group: GroupName, payloadJson: string, id?: NotificationId): Promise<NotificationId>;
  notifyPushId(pushId: PushId, payloadJson: string, id?: NotificationId): Promise<NotificationId>;
  clusterNodes(): Promise<ClusterNodeView[]>;
  listen(
    pushIds: readonly PushId[],
    from: CursorPosition | null,
    connection: ListenerConnection,
  ): Promise<void>;
  /** Null when ready to serve listeners, else the reason. */
  notReadyReason(): string | null;
  /** Prometheus text of this node's metrics. */
  metricsText(): Promise<{ contentType: string; body: string }>;
  /** For error answers that need a cursor before any read (e.g. a draining node). */
  headCursor(): Promise<Cursor>;
}
