/**
 * The longpoll-fanout generator's time bound (--max-seconds): what is left, a wait bounded by
 * it, and progress lines stamped with the time since the start.
 */
import { performance } from 'node:perf_hooks';

/** The run's time is up (or it cannot go on): the generator writes what it has and stops. */
export class AbortRun extends Error {}

export class RunClock {
  private readonly startedAt = performance.now();
  private readonly deadline: number;

  constructor(maxSeconds: number) {
    this.deadline = this.startedAt + maxSeconds * 1000;
  }

  remainingMs(): number {
    return this.deadline - performance.now();
  }

  /** The smaller of `ms` and the time left; throws once the run's time is up. */
  budget(ms: number, what: string): number {
    const left = this.remainingMs();
    if (left <= 0) throw new AbortRun(`--max-seconds reached before ${what}`);
    return Math.min(ms, left);
  }

  /** Throws once the run's time is up, naming what it was doing. */
  check(what: string): void {
    if (this.remainingMs() <= 0) throw new AbortRun(`--max-seconds reached while ${what}`);
  }

  log(message: string): void {
    const t = ((performance.now() - this.startedAt) / 1000).toFixed(1);
    process.stderr.write(`[gen +${t}s] ${message}\n`);
  }
}
