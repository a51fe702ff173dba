/** Default reconnect delays: the ceiling doubles from 0.5 s up to 30 s. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;

/** The ceiling of the delay before retry number `attempt` (0-based): `min(cap, base * 2^attempt)`. */
export function backoffCeiling(attempt: number, baseMs: number, capMs: number): number {
  // 2^attempt overflows nothing we care about: past ~16 doublings the cap has long won.
  return Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
}

/**
 * Exponential backoff with full jitter: each delay is uniform in [0, ceiling), so a fleet of
 * browsers that lost the same server spreads its retries instead of stampeding the survivor.
 * `reset()` after a success brings the ceiling back to the base.
 */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly random: () => number,
    private readonly baseMs = BACKOFF_BASE_MS,
    private readonly capMs = BACKOFF_CAP_MS,
  ) {}

  /** Consecutive failures since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The delay before the next retry; counts one more failure. */
  next(): number {
    const ceiling = backoffCeiling(this.attempt, this.baseMs, this.capMs);
    this.attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  reset(): void {
    this.attempt = 0;
  }
}
