import type { JetStreamManager, StreamInfo } from '@nats-io/jetstream';
import type { LogEntry } from '../driver.js';

/** Log entries fetched at once (in parallel) by a read. */
const READ_PAGE = 128;

export interface LogStreamSpec {
  readonly name: string;
  readonly subjects: readonly string[];
  readonly retentionMs: number;
  readonly maxLogBytes: number;
}

/** Creates the log stream, or brings one made by an earlier version up to date in place. */
export async function ensureLogStream(
  jsm: JetStreamManager,
  spec: LogStreamSpec,
): Promise<StreamInfo> {
  const subjects = [...spec.subjects];
  let info: StreamInfo | null = null;
  try {
    info = await jsm.streams.info(spec.name);
  } catch (error) {
    if (!/stream not found/i.test((error as Error).message)) throw error;
  }
  if (info !== null) {
    // Idempotency keys (Nats-Msg-Id) live as long as the log: the window is the max age.
    const window = info.config.max_age;
    const current =
      subjects.every((s) => info.config.subjects.includes(s)) &&
      info.config.duplicate_window >= window;
    if (current) return info;
    return jsm.streams.update(spec.name, { ...info.config, subjects, duplicate_window: window });
  }
  const maxAgeNs = spec.retentionMs * 1_000_000;
  return jsm.streams.add({
    name: spec.name,
    subjects,
    storage: 'file',
    retention: 'limits',
    discard: 'old',
    max_age: maxAgeNs,
    max_bytes: spec.maxLogBytes,
    // Idempotency keys (Nats-Msg-Id) are kept for the whole retention.
    duplicate_window: maxAgeNs,
    allow_direct: true,
    num_replicas: 1,
  });
}

/**
 * The log's incarnation: the stream's creation time in nanoseconds, base 36. A stream that
 * nats-server lost and we recreated has another, so old cursors are answered with reset.
 */
export function epochOf(info: StreamInfo): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(info.created);
  const seconds = BigInt(
    Math.floor(Date.parse(`${match?.[1] ?? info.created}${match?.[3] ?? ''}`) / 1000),
  );
  const nanos = BigInt((match?.[2] ?? '').padEnd(9, '0').slice(0, 9));
  return (seconds * 1_000_000_000n + nanos).toString(36);
}

/** Entries `first..last` of the log stream by direct gets, a page at a time (trimmed: absent). */
export async function readLog(
  jsm: JetStreamManager,
  stream: string,
  first: number,
  last: number,
): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (let from = first; from <= last; from += READ_PAGE) {
    const seqs: number[] = [];
    for (let seq = from; seq <= Math.min(last, from + READ_PAGE - 1); seq++) seqs.push(seq);
    const stored = await Promise.all(seqs.map((seq) => jsm.direct.getMessage(stream, { seq })));
    for (const message of stored) {
      if (message !== null) out.push({ seq: message.seq, body: message.string() });
    }
  }
  return out;
}
