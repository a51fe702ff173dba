import type { Backplane } from '../backplane/backplane.js';
import type { EpushConfig } from '../config/flags.js';
import { EpushError } from '../core/errors.js';
import type { GroupName } from '../core/group-name.js';
import type { PushId } from '../core/push-id.js';
import type { GroupPresence, PresenceService, PushIdPresence } from '../http/push-service.js';
import type { PeriodicTasks } from './periodic-tasks.js';
import { PresenceTracker, type HoldSource } from './presence-tracker.js';

/** How often the node compares what it holds with what it wrote. */
const TRACK_EVERY_MS = 250;
/** Longest a hold that ended waits for its listener to come back before it is written. */
const MAX_LINGER_MS = 1000;

/**
 * A node's part in presence: the tracker that writes its hold transitions, and the two API
 * reads (answered from the backplane, so every node answers the same).
 */
export class NodePresence implements PresenceService {
  readonly tracker: PresenceTracker;

  /** Tracking starts once the node is in the cluster directory (see PresenceTracker). */
  constructor(
    private readonly backplane: Backplane,
    source: HoldSource,
    config: Pick<EpushConfig, 'nodeId' | 'presenceGraceSeconds'>,
    tasks: PeriodicTasks,
  ) {
    const lingerMs = Math.min(MAX_LINGER_MS, (config.presenceGraceSeconds * 1000) / 2);
    this.tracker = new PresenceTracker(backplane, source, config.nodeId, lingerMs);
    tasks.every(TRACK_EVERY_MS, () => this.tracker.tick());
  }

  /** Orderly stop: this node's holds end now. Never throws (the node stops regardless). */
  async stop(): Promise<void> {
    await this.tracker.releaseAll().catch(() => undefined);
  }

  async pushIdPresence(pushId: PushId): Promise<PushIdPresence> {
    const view = await this.backplane.presenceOf(pushId);
    if (view === null) {
      throw new EpushError('push_id_not_found', `Push ID ${pushId} was never minted here.`);
    }
    return {
      pushId,
      state: view.state,
      since: new Date(view.since).toISOString(),
      groups: [...view.groups],
    };
  }

  groupPresence(group: GroupName): Promise<GroupPresence> {
    return this.backplane.groupPresence(group);
  }
}
