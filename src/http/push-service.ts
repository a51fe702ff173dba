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

/** The reserved group every `/admin` dashboard's push ID joins; nodes publish their stats to it. */
export const ADMIN_GROUP = 'epush.admin' as GroupName;

/** Seconds between two samples of one node on the `/admin` dashboard. */
export const ADMIN_PERIOD_SECONDS = 2;

/**
 * One node's figures for the `/admin` dashboard, published to {@link ADMIN_GROUP} every period
 * while the group has members. Counters (`published`, `delivered`) are totals since the node
 * started; the page turns their deltas into rates.
 */
export interface AdminSample {
  readonly node: string;
  /** Milliseconds since the epoch when the sample was taken. */
  readonly at: number;
  readonly connections: {
    readonly 'long-poll': number;
    readonly sse: number;
    readonly websocket: number;
  };
  readonly listeners: number;
  readonly openSockets: number;
  /** Notifications accepted by this node's API (the dashboard feed itself is not counted). */
  readonly published: number;
  /** Deliveries written to listeners by this node (dashboards' own deliveries included). */
  readonly delivered: number;
  readonly backplane: {
    readonly up: boolean;
    /** Last delivery-canary round trip; null before the first. */
    readonly rttSeconds: number | null;
    readonly leader: boolean;
  };
  readonly rssBytes: number;
}

/** What a dashboard starts from: the cluster list (heartbeats) and this node's sample. */
export interface AdminSnapshot {
  readonly nodes: ClusterNodeView[];
  readonly sample: AdminSample;
  /** Seconds between two samples of one node. */
  readonly periodSeconds: number;
  readonly group: string;
  readonly backplane: string;
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
  /** The `/admin` dashboard's starting figures (see {@link AdminSnapshot}). */
  adminSnapshot(): Promise<AdminSnapshot>;
}
