import type { Logger } from 'pino';
import type { Backplane } from '../backplane/backplane.js';
import type { Dispatcher } from './dispatcher.js';

/** Canary period while the canary is lost. */
const RECOVERY_PROBE_MS = 200;

/**
 * The delivery canary: a probe must travel through the backplane and come back within three
 * periods, else, unless other events arrived meanwhile, the node is "connected but not
 * delivering" — readiness turns red, held listeners are sent elsewhere, new ones get 503 —
 * until a probe comes back again.
 */
export class DeliveryCanary {
  /** Last round trip (seconds); NaN until the first one. */
  private rtt = Number.NaN;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly backplane: Backplane,
    private readonly dispatcher: Dispatcher,
    private readonly periodMs: number,
    private readonly log: Logger,
  ) {}

  /** Seconds of the last canary round trip through the backplane (NaN before the first). */
  get roundTripSeconds(): number {
    return this.rtt;
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.run();
    }, delayMs);
    this.timer.unref();
  }

  private async run(): Promise<void> {
    const { periodMs } = this;
    const started = performance.now();
    const eventsBefore = this.dispatcher.eventsArrived;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => {
        resolve('timeout');
      }, periodMs * 3);
    });
    const outcome = await Promise.race([
      this.backplane.probe().then(() => 'back' as const),
      timedOut,
    ]).catch(() => 'failed' as const);
    clearTimeout(timer);
    if (this.stopped) return;
    if (outcome === 'timeout' && this.dispatcher.eventsArrived !== eventsBefore) {
      // Events still arrive: the backplane delivers, only late (a backed-up relay, a busy
      // box). Sending every listener away now would only add a re-poll storm to the load.
      this.log.warn('delivery canary is late, but events arrive: still delivering');
      this.schedule(0);
      return;
    }
    const delivering = outcome === 'back';
    if (delivering) this.rtt = (performance.now() - started) / 1000;
    if (delivering !== this.dispatcher.isDelivering) {
      this.log[delivering ? 'info' : 'error'](
        { outcome },
        delivering ? 'delivery canary is back' : 'delivery canary lost: not ready',
      );
    }
    this.dispatcher.setDelivering(delivering);
    // While not delivering, probe faster: readiness (and every listener refused meanwhile)
    // should come back within a fraction of a second of the backplane, not a whole period.
    const nextMs = delivering ? periodMs : Math.min(periodMs, RECOVERY_PROBE_MS);
    this.schedule(Math.max(0, nextMs - (performance.now() - started)));
  }
}
