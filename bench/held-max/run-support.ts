/**
 * What every part of the held-max run shares: its log lines, run id stamp, the monotonic clock
 * in µs (shared by every process: publish and delivery instants), the group every listener is in,
 * and the run's time bound.
 */

export const NOTIFY_GROUP = 'bench';

export function log(message: string): void {
  process.stderr.write(`[held-max ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

export function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export class Deadline {
  private readonly end: number;

  constructor(seconds: number) {
    this.end = Date.now() + seconds * 1000;
  }

  left(): number {
    return this.end - Date.now();
  }

  /** The smaller of `ms` and the time left; throws once the run's time is up. */
  budget(ms: number, what: string): number {
    const left = this.left();
    if (left <= 0) throw new Error(`--max-seconds reached before ${what}`);
    return Math.min(ms, left);
  }
}
