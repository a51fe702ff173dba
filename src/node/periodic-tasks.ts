import type { Logger } from 'pino';

/**
 * A node's periodic background work (heartbeats, push-ID liveness): unref'd intervals whose
 * failures are logged, never thrown, all cleared at once when the node stops.
 */
export class PeriodicTasks {
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(private readonly log: Logger) {}

  /** Runs `task` every `ms`; a failed run is logged and the next one runs as planned. */
  every(ms: number, task: () => Promise<void>): void {
    const timer = setInterval(() => {
      task().catch((error: unknown) => {
        this.log.warn({ err: error }, 'periodic task failed');
      });
    }, ms);
    timer.unref();
    this.timers.push(timer);
  }

  stopAll(): void {
    for (const timer of this.timers) clearInterval(timer);
    this.timers.length = 0;
  }
}
