import type { Logger } from 'pino';
import type { Backplane } from '../backplane/backplane.js';
import type { EpushConfig } from '../config/flags.js';
import { EpushError } from '../core/errors.js';
import type { GroupName } from '../core/group-name.js';
import type { PushId } from '../core/push-id.js';
import type { GroupPresence, PresenceService, PushIdPresence } from '../http/push-service.js';
import type { EpushMetrics } from '../observability/metrics.js';
import { PeriodicTasks } from './periodic-tasks.js';
import { PresenceTracker, type HoldSource } from './presence-tracker.js';
import { WebhookSender } from './webhook-sender.js';

/** How often the node compares what it holds with what it wrote. */
const TRACK_EVERY_MS = 250;
/**
 * How long a hold that ended waits for its listener to come back before it is written: all of
 * the grace but this much, so the release is written (with the time the hold really ended)
 * before the grace is over. Browsers that re-poll late (a burst of answers) then cost nothing.
 */
const LINGER_MARGIN_MS = 1000;
const MIN_LINGER_MS = 500;

/** What presence needs from its node. */
export interface PresenceNode {
  readonly backplane: Backplane;
  readonly dispatcher: HoldSource;
  readonly metrics: EpushMetrics;
  readonly log: Logger;
}

/**
 * A node's part in presence: the tracker that writes its hold transitions, the webhook sender
 * (with --webhook-url), and the two API reads (answered from the backplane, so every node
 * answers the same).
 */
export class NodePresence implements PresenceService {
  readonly tracker: PresenceTracker;
  readonly webhooks: WebhookSender | null = null;
  private readonly backplane: Backplane;
  private readonly tasks: PeriodicTasks;

  /** Tracking starts once the node is in the cluster directory (see PresenceTracker). */
  constructor(
    node: PresenceNode,
    config: Pick<EpushConfig, 'nodeId' | 'presenceGraceSeconds' | 'webhookUrl' | 'webhookSecret'>,
  ) {
    this.backplane = node.backplane;
    const graceMs = config.presenceGraceSeconds * 1000;
    const lingerMs = Math.max(Math.min(MIN_LINGER_MS, graceMs / 2), graceMs - LINGER_MARGIN_MS);
    this.tracker = new PresenceTracker(node.backplane, node.dispatcher, config.nodeId, lingerMs);
    this.tasks = new PeriodicTasks(node.log);
    this.tasks.every(TRACK_EVERY_MS, () => this.tracker.tick());
    if (config.webhookUrl !== '' && node.backplane.presenceSupported) {
      const counter = node.metrics.webhookEvents;
      this.webhooks = new WebhookSender({
        url: config.webhookUrl,
        secret: config.webhookSecret,
        backplane: node.backplane,
        count: (outcome, events) => {
          counter.inc({ outcome }, events);
        },
        log: node.log,
      });
      node.backplane.presenceOutbox(this.webhooks);
    }
  }

  /**
   * Orderly stop: this node's holds end now, its webhook sender stops (what it did not send
   * stays in the outboxes; another node takes it over once this one has left). Never throws.
   */
  async stop(): Promise<void> {
    this.tasks.stopAll();
    this.webhooks?.stop();
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
