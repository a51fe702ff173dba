/** Small numeric helpers for the bench reports. */

export interface Distribution {
  readonly count: number;
  readonly min: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentiles of `values` (not modified). Empty input gives NaN fields. */
export function distribution(values: ArrayLike<number>): Distribution {
  const sorted = Float64Array.from(values).sort();
  const count = sorted.length;
  const rank = (p: number): number =>
    count === 0 ? NaN : (sorted[Math.min(count - 1, Math.max(0, Math.ceil(p * count) - 1))] ?? NaN);
  let sum = 0;
  for (const value of sorted) sum += value;
  return {
    count,
    min: count === 0 ? NaN : (sorted[0] ?? NaN),
    p50: rank(0.5),
    p90: rank(0.9),
    p99: rank(0.99),
    max: count === 0 ? NaN : (sorted[count - 1] ?? NaN),
    mean: count === 0 ? NaN : sum / count,
  };
}

export function round(value: number, digits = 1): number {
  if (!Number.isFinite(value)) return value;
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `predicate` every `pollMs` until true or `timeoutMs`; resolves whether it became true. */
export async function waitUntil(
  predicate: () => boolean,
  timeoutMs: number,
  pollMs = 20,
): Promise<boolean> {
  const end = Date.now() + Math.max(0, timeoutMs);
  for (;;) {
    if (predicate()) return true;
    if (Date.now() >= end) return false;
    await sleep(Math.min(pollMs, Math.max(1, end - Date.now())));
  }
}
