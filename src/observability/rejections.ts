/**
 * Requests this node refused, by reason (the error code of the answer, or the limit that cut a
 * connection before any answer). Plain counts on the hot path; the metrics read them at scrape.
 */
export class RejectionCounter {
  readonly counts = new Map<string, number>();

  count(reason: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
  }
}
