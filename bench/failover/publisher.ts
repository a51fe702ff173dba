/** The failover bench's publisher: one numbered notification every interval through one node. */
import { performance } from 'node:perf_hooks';
import { ApiClient } from '../lib/http-client.js';
import { sleep } from '../lib/stats.js';
import type { Cluster } from './cluster.js';
import type { FailoverListeners } from './recovery.js';

export interface PublishRecord {
  readonly seq: number;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly status: number;
}

/** One numbered notification every `intervalMs` through one node, one request at a time. */
export class Publisher {
  readonly records: PublishRecord[] = [];
  readonly accepted: number[] = [];
  failures = 0;
  private seq = 0;
  private stopped = false;
  private client: ApiClient | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly port: number,
    private readonly pool: FailoverListeners,
    private readonly intervalMs: number,
  ) {}

  get lastAccepted(): number {
    return this.accepted.length === 0 ? 0 : (this.accepted[this.accepted.length - 1] ?? 0);
  }

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    let planned = performance.now();
    while (!this.stopped) {
      const seq = ++this.seq;
      const request = this.cluster.publishRequest(seq);
      const sentAt = performance.now();
      try {
        this.client ??= await ApiClient.open('127.0.0.1', this.port, 2000);
        const response = await this.client.request(
          request.method,
          request.path,
          request.body,
          5000,
        );
        const id = this.cluster.acceptedId(response.status, response.body);
        if (id !== null) {
          this.accepted.push(seq);
          if (id !== '') this.pool.idOfSeq.set(seq, id);
        }
        this.records.push({ seq, sentAt, doneAt: response.doneAt, status: response.status });
      } catch {
        this.failures += 1;
        this.records.push({ seq, sentAt, doneAt: performance.now(), status: 0 });
        this.client?.close();
        this.client = null;
      }
      planned += this.intervalMs;
      const wait = planned - performance.now();
      if (wait > 0) await sleep(wait);
      else planned = performance.now();
    }
    this.client?.close();
  }
}
