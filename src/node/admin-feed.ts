import type { Logger } from 'pino';
import type { Backplane } from '../backplane/backplane.js';
import type { NotificationId } from '../core/events.js';
import { ADMIN_GROUP, ADMIN_PERIOD_SECONDS, type AdminSample } from '../http/push-service.js';

export interface AdminFeedSource {
  /** How many push IDs are in the dashboard group now (the backplane's view). */
  audience(): Promise<number>;
  sample(): Promise<AdminSample>;
  /** Publishes the serialized sample to the dashboard group (not counted as an API notification). */
  publish(payloadJson: string): Promise<void>;
}

/**
 * Keeps the `/admin` dashboards live with epush's own push: every period, when the dashboard
 * group has members, this node publishes its sample to it. With no dashboard open it costs one
 * membership read per period; a dashboard's push ID leaves the group by itself when it expires
 * (push-ID TTL), so a closed page stops the feed one TTL later.
 *
 * One timer, unref'd; `stop()` clears it and waits for a tick in flight, so nothing runs after
 * the node stops its backplane.
 */
export class AdminFeed {
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly source: AdminFeedSource,
    private readonly log: Logger,
    private readonly periodMs = ADMIN_PERIOD_SECONDS * 1000,
  ) {}

  start(): void {
    if (this.stopped || this.timer !== null) return;
    this.timer = setInterval(() => {
      // A slow backplane must not pile ticks up: skip while one is still running.
      if (this.inFlight !== null) return;
      this.inFlight = this.tick().finally(() => {
        this.inFlight = null;
      });
    }, this.periodMs);
    this.timer.unref();
  }

  /** Stops for good (drain, stop); resolves when no tick runs any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    await this.inFlight;
  }

  /** A method, not the field: `stop()` may run while a tick awaits. */
  private isStopped(): boolean {
    return this.stopped;
  }

  private async tick(): Promise<void> {
    try {
      if ((await this.source.audience()) === 0 || this.isStopped()) return;
      const sample = await this.source.sample();
      if (this.isStopped()) return;
      await this.source.publish(JSON.stringify(sample));
    } catch (error) {
      // The backplane is down or stopping: the dashboard shows this node as stale meanwhile.
      this.log.debug({ err: error }, 'admin feed: sample not published');
    }
  }
}

/**
 * The node's feed: its audience is the dashboard group's size in `backplane` (0 while the
 * backplane is down), and it publishes there directly, with ids from `nextId`.
 */
export function adminFeedThrough(
  backplane: Backplane,
  nextId: () => NotificationId,
  sample: () => Promise<AdminSample>,
  log: Logger,
): AdminFeed {
  return new AdminFeed(
    {
      audience: async () => (backplane.isUp() ? (await backplane.members(ADMIN_GROUP)).length : 0),
      sample,
      publish: async (payloadJson) => {
        await backplane.publish({
          type: 'notification',
          id: nextId(),
          group: ADMIN_GROUP,
          pushId: null,
          payloadJson,
          publishedAt: Date.now(),
        });
      },
    },
    log,
  );
}
