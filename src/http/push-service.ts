import type { NodeInfo, NotifyTarget } from '../backplane/backplane.js';
import type { GroupName } from '../core/group-name.js';
import type { PushId } from '../core/push-id.js';
import type { ListenService } from '../transports/listen-service.js';
import type { HistoryService } from './routes/history-routes.js';

/** @deprecated The same type as {@link NodeInfo}, which is the one name for a cluster node. */
export type ClusterNodeView = NodeInfo;

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
  /** Push IDs a listener holds on this node (presence: `listening` because of this node). */
  readonly listening: number;
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
  readonly nodes: NodeInfo[];
  readonly sample: AdminSample;
  /** Seconds between two samples of one node. */
  readonly periodSeconds: number;
  readonly group: string;
  readonly backplane: string;
}

/** `GET /api/push-ids/{pushId}` (docs/protocol.md, "Presence"). */
export interface PushIdPresence {
  readonly pushId: PushId;
  readonly state: 'listening' | 'idle' | 'expired';
  /** ISO-8601. */
  readonly since: string;
  readonly groups: readonly GroupName[];
}

/** `GET /api/groups/{group}/presence`. */
export interface GroupPresence {
  readonly members: number;
  readonly listening: readonly PushId[];
}

/** The presence reads; the same answer from every node of the cluster. */
export interface PresenceService {
  /** Throws `push_id_not_found` for a push ID never minted. */
  pushIdPresence(pushId: PushId): Promise<PushIdPresence>;
  groupPresence(group: GroupName): Promise<GroupPresence>;
}

/**
 * What the HTTP surface needs from a node: the transports' {@link ListenService} plus the
 * application API, ops and the dashboard. Implemented by EpushNode; the routes validate input
 * and render answers, this does the work. Failures are EpushErrors from the catalogue.
 */
/**
 * Notify (NotifyTarget): `payloadJson` is the payload already serialized (`null` when none was
 * sent); with an idempotency key (scoped), a repeat within retention publishes nothing and
 * answers the first call's id; `id` is given by the JMS ingress, else one is minted.
 */
export interface PushService extends ListenService, HistoryService, NotifyTarget {
  createPushIds(count: number): Promise<PushId[]>;
  addMember(group: GroupName, pushId: PushId): Promise<void>;
  removeMember(group: GroupName, pushId: PushId): Promise<void>;
  members(group: GroupName): Promise<PushId[]>;
  clusterNodes(): Promise<NodeInfo[]>;
  /** Prometheus text of this node's metrics. */
  metricsText(): Promise<{ contentType: string; body: string }>;
  /** The `/admin` dashboard's starting figures (see {@link AdminSnapshot}). */
  adminSnapshot(): Promise<AdminSnapshot>;
  /** Presence; absent where the node keeps none (the routes then answer 404). */
  readonly presence?: PresenceService;
}
