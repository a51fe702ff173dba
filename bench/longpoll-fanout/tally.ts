/**
 * What the longpoll-fanout generator received: the deliveries of one set of numbered messages
 * (count, latencies, first and last arrival), and the message index of a payload.
 */

export /** Deliveries of one set of messages (the warm-up has its own). */
class Tally {
  readonly delivered: Int32Array;
  readonly latencies: Float64Array[];
  readonly sentAt: Float64Array;
  readonly firstAt: Float64Array;
  readonly lastAt: Float64Array;
  duplicates = 0;

  constructor(
    readonly messages: number,
    private readonly capacity: number,
  ) {
    this.delivered = new Int32Array(messages);
    this.latencies = Array.from({ length: messages }, () => new Float64Array(capacity));
    this.sentAt = new Float64Array(messages).fill(NaN);
    this.firstAt = new Float64Array(messages).fill(NaN);
    this.lastAt = new Float64Array(messages).fill(NaN);
  }

  record(k: number, now: number): void {
    const i = this.delivered[k] ?? 0;
    this.delivered[k] = i + 1;
    if (i < this.capacity) this.latencies[k]![i] = now - this.sentAt[k]!;
    if (Number.isNaN(this.firstAt[k])) this.firstAt[k] = now;
    this.lastAt[k] = now;
  }

  latencyOf(k: number): Float64Array {
    return this.latencies[k]!.subarray(0, Math.min(this.capacity, this.delivered[k]!));
  }
}

export /** `k` of a payload `{"k":…,"t":…}` this generator published, or null for anything else. */
function messageIndex(payload: string, messages: number): number | null {
  let k: unknown;
  try {
    const parsed: unknown = JSON.parse(payload);
    k = typeof parsed === 'object' && parsed !== null && 'k' in parsed ? parsed.k : null;
  } catch {
    return null;
  }
  return typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < messages ? k : null;
}
