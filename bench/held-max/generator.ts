/**
 * One load generator of the held-max scenario (bench/held-max/scenario.ts starts G of them, each
 * with `ulimit -n 20000`). It holds its share of the listeners as raw keep-alive sockets from its
 * own source addresses, at most --concurrency connects in flight, and re-polls after each answer
 * like a browser. It talks to the scenario by JSON lines: progress and delivery reports on
 * stdout (types.ts), commands on stdin.
 *
 *   epush: `POST /push/listen {"pushIds":[id],"cursor":…}` with the push IDs of --ids-file;
 *   nchan: `GET /sub/<channel>`, re-polled with If-Modified-Since / If-None-Match.
 *
 * Every delivery is recorded with process.hrtime.bigint() (CLOCK_MONOTONIC, the same clock in
 * every process of the machine), so the scenario can give the publish instant afterwards.
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { Args } from '../lib/args.js';
import { listenRequestText, rawConnect, ResponseParser } from '../lib/http-client.js';
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

let answers = 0;
let emptyAnswers = 0;
let reconnectAnswers = 0;
let notifications = 0;
let reconnects = 0;
let openSockets = 0;
let connected = 0;
let failed = 0;
let finishing = false;
const errors: Record<string, number> = {};
const errorSamples: string[] = [];

function error(kind: string, detail: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  if (errorSamples.length < 20) errorSamples.push(`${kind}: ${detail}`.slice(0, 300));
}

/** Deliveries by notification id: listener index and arrival (µs, monotonic). */
const received = new Map<string, { index: number[]; us: number[] }>();

function record(id: string, index: number, us: number): void {
  let entry = received.get(id);
  if (!entry) {
    entry = { index: [], us: [] };
    received.set(id, entry);
  }
  entry.index.push(index);
  entry.us.push(us);
  notifications += 1;
}

// --- listeners -------------------------------------------------------------------------------

type State = 'new' | 'connecting' | 'armed' | 'answered' | 'closed' | 'failed';

interface Listener {
  readonly index: number;
  readonly localAddress: string;
  socket: Socket | null;
  state: State;
  /** Monotonic ms when the outstanding listen was sent. */
  armedAt: number;
  cursor: string | null;
  lastModified: string | null;
  etag: string | null;
  reconnects: number;
  everConnected: boolean;
  /** Failed listens in a row (for the back-off); 0 after a 200. */
  failures: number;
}

const listeners: Listener[] = Array.from({ length: n }, (_, index) => ({
  index,
  localAddress: sourceAddresses[index % sourceAddresses.length] ?? '127.0.0.1',
  socket: null,
  state: 'new',
  armedAt: 0,
  cursor: null,
  lastModified: null,
  etag: null,
  reconnects: 0,
  everConnected: false,
  failures: 0,
}));

function listenText(listener: Listener): string {
  if (target === 'nchan') {
    let head = `GET /sub/${channel} HTTP/1.1\r\nHost: ${hostHeader}\r\n`;
    if (listener.lastModified !== null) head += `If-Modified-Since: ${listener.lastModified}\r\n`;
    if (listener.etag !== null) head += `If-None-Match: ${listener.etag}\r\n`;
    return `${head}\r\n`;
  }
  return listenRequestText(hostHeader, pushIds[listener.index] as string, listener.cursor);
}

function poll(listener: Listener): void {
  if (finishing || listener.socket === null || listener.state !== 'answered') return;
  listener.state = 'armed';
  listener.armedAt = performance.now();
  listener.socket.write(listenText(listener));
}

/** Re-polls after a refused listen, with the browser client's jittered exponential back-off. */
function backoff(listener: Listener): void {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** listener.failures);
  listener.failures += 1;
  repoll(listener, Math.random() * ceiling);
}

function repoll(listener: Listener, delayMs: number): void {
  if (delayMs <= 0) poll(listener);
  else
    setTimeout(() => {
      poll(listener);
    }, delayMs);
}

const LAST_MODIFIED = /\r\nlast-modified:[ \t]*([^\r]+)/i;
const ETAG = /\r\netag:[ \t]*([^\r]+)/i;

function onAnswer(listener: Listener, status: number, head: string, body: Buffer): void {
  const us = nowUs();
  answers += 1;
  if (listener.state === 'armed') listener.state = 'answered';
  if (target === 'nchan') {
    if (status === 200) {
      listener.failures = 0;
      listener.lastModified = LAST_MODIFIED.exec(head)?.[1]?.trim() ?? listener.lastModified;
      listener.etag = ETAG.exec(head)?.[1]?.trim() ?? listener.etag;
      record(body.toString('utf8'), listener.index, us);
      repoll(listener, repollDelayMs);
    } else if (status === 408 || status === 304) {
      emptyAnswers += 1;
      repoll(listener, 0);
    } else {
      error(`status:${status}`, body.toString('utf8', 0, Math.min(body.length, 200)));
      backoff(listener);
    }
    return;
  }
  if (status !== 200) {
    error(`status:${status}`, body.toString('utf8', 0, Math.min(body.length, 200)));
    backoff(listener);
    return;
  }
  listener.failures = 0;
  let answer: { notifications?: { id?: unknown }[]; cursor?: unknown; reconnect?: unknown };
  try {
    answer = JSON.parse(body.toString('utf8')) as typeof answer;
  } catch {
    error('json', body.toString('utf8', 0, Math.min(body.length, 200)));
    backoff(listener);
    return;
  }
  if (typeof answer.cursor === 'string') listener.cursor = answer.cursor;
  const list = Array.isArray(answer.notifications) ? answer.notifications : [];
  if (answer.reconnect === true) reconnectAnswers += 1;
  if (list.length === 0) {
    emptyAnswers += 1;
    repoll(listener, 0);
    return;
  }
  for (const notification of list) {
    record(typeof notification.id === 'string' ? notification.id : '?', listener.index, us);
  }
  repoll(listener, repollDelayMs);
}

/** Opens (or reopens) a listener's connection and sends its listen; `settled` runs once. */
function open(listener: Listener, settled?: () => void): void {
  let done = false;
  const settle = (): void => {
    if (!done) {
      done = true;
      settled?.();
    }
  };
  listener.state = 'connecting';
  const parser = new ResponseParser((status, body, _close, head) => {
    onAnswer(listener, status, head, body);
  });
  const socket = rawConnect({
    host,
    port,
    localAddress: listener.localAddress,
    onData: (chunk) => {
      try {
        parser.feed(chunk);
      } catch (failure) {
        error('protocol', (failure as Error).message);
        socket.destroy();
      }
    },
  });
  listener.socket = socket;
  openSockets += 1;
  socket.once('connect', () => {
    if (!listener.everConnected) connected += 1;
    listener.everConnected = true;
    listener.state = 'answered';
    poll(listener);
    settle();
  });
  socket.on('error', (failure: NodeJS.ErrnoException) => {
    error(`socket:${failure.code ?? 'error'}`, failure.message);
  });
  socket.once('close', () => {
    openSockets -= 1;
    settle();
    if (listener.socket !== socket) return;
    listener.socket = null;
    if (finishing) {
      listener.state = 'closed';
      return;
    }
    if (listener.reconnects >= MAX_RECONNECTS) {
      listener.state = 'failed';
      failed += 1;
      return;
    }
    listener.state = 'closed';
    listener.reconnects += 1;
    reconnects += 1;
    // The browser client's back-off, for a lost connection as for a refused listen.
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** listener.reconnects);
    setTimeout(() => {
      if (!finishing && listener.state === 'closed') open(listener);
    }, Math.random() * ceiling);
  });
}

/** Opens every listener, at most `concurrency` connects in flight and `connectRate` per second. */
function openAll(): void {
  let next = 0;
  let inFlight = 0;
  let allowance = 0;
  const tickMs = 50;
  const startOne = (): void => {
    if (finishing || next >= n || inFlight >= concurrency) return;
    if (connectRate > 0) {
      if (allowance < 1) return;
      allowance -= 1;
    }
    const listener = listeners[next++]!;
    inFlight += 1;
    open(listener, () => {
      inFlight -= 1;
      startOne();
    });
  };
  const fill = (): void => {
    while (!finishing && next < n && inFlight < concurrency) {
      const before = next;
      startOne();
      if (next === before) break;
    }
  };
  if (connectRate > 0) {
    const ticker = setInterval(() => {
      allowance = Math.min(allowance + (connectRate * tickMs) / 1000, Math.max(1, connectRate));
      fill();
      if (next >= n || finishing) clearInterval(ticker);
    }, tickMs);
  }
  allowance = connectRate > 0 ? 1 : 0;
  fill();
}

// --- reports ---------------------------------------------------------------------------------

function progress(): ProgressLine {
  const now = performance.now();
  let armed = 0;
  let held = 0;
  for (const listener of listeners) {
    if (listener.state !== 'armed') continue;
    armed += 1;
    if (now - listener.armedAt >= HELD_AFTER_MS) held += 1;
  }
  const cpu = process.cpuUsage();
  return {
    type: 'progress',
    generator: generatorIndex,
    listeners: n,
    open: openSockets,
    connected,
    armed,
    held,
    failed,
    answers,
    emptyAnswers,
    reconnectAnswers,
    notifications,
    reconnects,
    errors,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  };
}

const reported = new Set<string>();

function deliveries(round: number, id: string, publishUs: number): DeliveryLine {
  reported.add(id);
  const entry = received.get(id) ?? { index: [], us: [] };
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
}

function stop(code: number): void {
  finishing = true;
  emit({ type: 'errors', generator: generatorIndex, samples: errorSamples });
  for (const listener of listeners) listener.socket?.destroy();
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
      emit(deliveries(command.round, command.id, command.publishUs));
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
