/**
 * One load generator of the held-max scenario (bench/held-max/run-target.ts starts G of them, each
 * with `ulimit -n 20000`). It holds its share of the listeners as raw keep-alive sockets from its
 * own source addresses, at most --concurrency connects in flight, and re-polls after each answer
 * like a browser (the bench's one listener pool, bench/peers/listener-pool.ts). It talks to the scenario by JSON lines: progress and delivery reports on
 * stdout (types.ts), commands on stdin.
 *
 *   epush: `POST /push/listen {"pushIds":[id],"cursor":…}` with the push IDs of --ids-file;
 *   nchan: `GET /sub/<channel>`, re-polled with If-Modified-Since / If-None-Match.
 * Deliveries are recorded by payload: the scenario publishes a distinct one each round.
 *
 * Every delivery is recorded with process.hrtime.bigint() (CLOCK_MONOTONIC, the same clock in
 * every process of the machine), so the scenario can give the publish instant afterwards.
 */
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Args } from '../lib/args.js';
import { epushLongPoll } from '../peers/listen-epush-longpoll.js';
import { nchanLongPoll } from '../peers/listen-nchan.js';
import { ListenerPool } from '../peers/listener-pool.js';
import { DEFAULT_HINTS } from '../peers/types.js';
import {
  isTarget,
  type DeliveryLine,
  type ErrorSamplesLine,
  type GeneratorCommand,
  type ProgressLine,
} from './types.js';

const MAX_RECONNECTS = 20;
/** Like the browser client (client/src/backoff.ts): full jitter, 0.5 s doubling to 30 s. */
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const HELD_AFTER_MS = 1000;
const PROGRESS_EVERY_MS = 1000;

const args = Args.parse(process.argv.slice(2), {
  generator: 'number',
  host: 'string',
  port: 'number',
  target: 'string',
  'ids-file': 'string',
  n: 'number',
  channel: 'string',
  'src-ips': 'string',
  concurrency: 'number',
  'max-seconds': 'number',
  'repoll-delay-ms': 'number',
  'connect-rate': 'number',
});
const target = args.string('target', 'epush');
if (!isTarget(target)) throw new Error(`--target must be epush or nchan (got "${target}")`);
const generatorIndex = args.integer('generator', 0, 0, 1000);
const host = args.string('host', '127.0.0.1');
const port = args.integer('port', 0, 1, 65535);
const hostHeader = `${host}:${port}`;
const channel = args.string('channel', 'bench');
const sourceAddresses = args
  .string('src-ips', '127.0.0.1')
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');
const concurrency = args.integer('concurrency', 256, 1, 10_000);
const maxSeconds = args.number('max-seconds', 900, 1, 86_400);
const repollDelayMs = args.integer('repoll-delay-ms', 0, 0, 600_000);
/** New connections per second (0 = only bounded by --concurrency). */
const connectRate = args.number('connect-rate', 0, 0, 1_000_000);

const pushIds: string[] =
  target === 'epush'
    ? readFileSync(args.string('ids-file', ''), 'utf8')
        .split('\n')
        .filter((line) => line !== '')
    : [];
const n = target === 'epush' ? pushIds.length : args.integer('n', 1000, 1, 19_500);
if (n > 19_500) throw new Error(`${n} listeners do not fit the fd limit of one process`);

function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function log(message: string): void {
  process.stderr.write(`[gen ${generatorIndex}] ${message}\n`);
}

function emit(line: ProgressLine | DeliveryLine | ErrorSamplesLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

// --- counters --------------------------------------------------------------------------------

const counters: Record<string, number> = {};
let answers = 0;
let emptyAnswers = 0;
let notifications = 0;
let finishing = false;
const errors: Record<string, number> = {};
const errorSamples: string[] = [];

function count(name: string): void {
  counters[name] = (counters[name] ?? 0) + 1;
}

function error(kind: string, detail: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  if (errorSamples.length < 20) errorSamples.push(`${kind}: ${detail}`.slice(0, 300));
}

/** Deliveries by payload (the round's key): listener index and arrival (µs, monotonic). */
const received = new Map<string, { index: number[]; us: number[] }>();

function record(key: string, index: number, us: number): void {
  let entry = received.get(key);
  if (!entry) {
    entry = { index: [], us: [] };
    received.set(key, entry);
  }
  entry.index.push(index);
  entry.us.push(us);
  notifications += 1;
}

// --- listeners -------------------------------------------------------------------------------

/** Like the browser client (client/src/backoff.ts): full jitter, doubling up to the cap. */
function backoffMs(attempt: number): number {
  return Math.random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
}

const pool = new ListenerPool({
  host,
  port,
  channel,
  protocol: target === 'epush' ? epushLongPoll : nchanLongPoll,
  hints: { ...DEFAULT_HINTS, connectRatePerSec: connectRate },
  identities: target === 'epush' ? pushIds : Array.from({ length: n }, () => channel),
  sources: sourceAddresses,
  concurrency,
  maxReconnects: MAX_RECONNECTS,
  repollDelayMs,
  backoffMs,
  onDelivered: (index, payloads) => {
    const us = nowUs();
    answers += 1;
    if (payloads.length === 0) emptyAnswers += 1;
    for (const payload of payloads) record(payload, index, us);
  },
  onError: error,
  count,
});

class Finished extends Error {}

/** Opens every listener, at most `concurrency` connects in flight and `connectRate` per second. */
function openAll(): void {
  pool
    .connectAll(() => {
      if (finishing) throw new Finished();
    })
    .catch((failure: unknown) => {
      if (!(failure instanceof Finished)) error('connect', String(failure));
    });
}

// --- reports ---------------------------------------------------------------------------------

function progress(): ProgressLine {
  const stats = pool.stats(HELD_AFTER_MS);
  const cpu = process.cpuUsage();
  return {
    type: 'progress',
    generator: generatorIndex,
    listeners: n,
    open: stats.open,
    connected: stats.everArmed,
    armed: stats.armed,
    held: stats.held,
    failed: stats.failed,
    answers,
    emptyAnswers,
    reconnectAnswers: counters.reconnectAnswers ?? 0,
    notifications,
    reconnects: counters.reconnects ?? 0,
    errors,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

const reported = new Set<string>();

function deliveries(round: number, key: string, publishUs: number): DeliveryLine {
  reported.add(key);
  const entry = received.get(key) ?? { index: [], us: [] };
  const seen = new Uint8Array(n);
  let delivered = 0;
  let duplicates = 0;
  let firstUs: number | null = null;
  let lastUs: number | null = null;
  const latenciesMs: number[] = [];
  for (let i = 0; i < entry.index.length; i++) {
    const index = entry.index[i]!;
    if (seen[index] === 1) {
      duplicates += 1;
      continue;
    }
    seen[index] = 1;
    delivered += 1;
    const us = entry.us[i]!;
    if (firstUs === null || us < firstUs) firstUs = us;
    if (lastUs === null || us > lastUs) lastUs = us;
    latenciesMs.push(Math.round((us - publishUs) / 10) / 100);
  }
  let foreign = 0;
  for (const [other, value] of received) {
    if (!reported.has(other)) foreign += value.index.length;
  }
  return {
    type: 'delivery',
    generator: generatorIndex,
    round,
    delivered,
    duplicates,
    foreign,
    firstUs,
    lastUs,
    latenciesMs,
  };
}

function finish(): void {
  finishing = true;
  pool.stop();
}

function stop(code: number): void {
  finishing = true;
  emit({ type: 'errors', generator: generatorIndex, samples: errorSamples });
  pool.destroy();
  setTimeout(() => process.exit(code), 200).unref();
  process.stdout.write('', () => {
    process.exit(code);
  });
}

createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === '') return;
  let command: GeneratorCommand;
  try {
    command = JSON.parse(line) as GeneratorCommand;
  } catch {
    log(`bad command: ${line.slice(0, 100)}`);
    return;
  }
  switch (command.cmd) {
    case 'report':
      emit(deliveries(command.round, command.key, command.publishUs));
      break;
    case 'progress':
      emit(progress());
      break;
    case 'finish':
      finish();
      break;
    case 'stop':
      stop(0);
      break;
  }
});
process.stdin.on('end', () => {
  stop(0);
});

setInterval(() => {
  emit(progress());
}, PROGRESS_EVERY_MS);
setTimeout(() => {
  log(`--max-seconds ${maxSeconds} reached: exiting`);
  stop(1);
}, maxSeconds * 1000).unref();

log(
  `${n} ${target} listeners to ${hostHeader} from ${sourceAddresses.join(',')}, ${concurrency} connects in flight`,
);
openAll();
