/**
 * Runs real epush nodes for the integration tests: `epush start` from the TypeScript source
 * (through tsx, no build needed) on a free port, plus small typed HTTP helpers for the
 * application API (docs/protocol.md), the long-poll browser protocol (docs/protocol.md) and raw sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { killOnExit } from '../../testbed/kill-on-exit.js';

/** The repository root (this file lives in test/support). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const READY_LINE = /^epush listening on (http:\/\/(\S+):(\d+)) \(node (\S+), backplane (\S+)\)$/;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface EpushProcess {
  /** `http://HOST:PORT` from the ready line. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly nodeId: string;
  readonly backplane: string;
  /** The ready line exactly as printed. */
  readonly readyLine: string;
  readonly child: ChildProcess;
  /** Everything the process wrote to stdout / stderr so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitInfo>;
  /** SIGKILL; resolves once the process is gone. Safe to call twice. */
  stop(): Promise<void>;
  /** SIGTERM (drain); resolves with the exit code and how long the exit took. */
  terminate(): Promise<ExitInfo & { readonly ms: number }>;
}

export interface StartOptions {
  /** Extra environment (the parent's EPUSH_* variables are never passed on). */
  readonly env?: Readonly<Record<string, string>>;
  /**
   * Prepend `--port 0 --log-level warn` (later flags win). Turn off to observe where the port
   * or other values come from (env, config file).
   */
  readonly defaults?: boolean;
  /** How long to wait for the ready line. */
  readonly timeoutMs?: number;
}

/**
 * Starting a node from source costs most of a second of CPU (tsx compiles it); more than two
 * at once on a small machine only make every start slower. Starts queue for one of these slots.
 */
const STARTUP_SLOTS = 2;
let freeSlots = STARTUP_SLOTS;
const waiting: (() => void)[] = [];

async function withStartupSlot<T>(work: () => Promise<T>): Promise<T> {
  if (freeSlots > 0) freeSlots -= 1;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  try {
    return await work();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else freeSlots += 1;
  }
}

function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('EPUSH_')) env[name] = value;
  }
  return { ...env, ...extra };
}

/**
 * One-shot CLI runs (--help, refused configurations) start dozens of processes, and tsx's own
 * start-up is most of their cost. They run the same source bundled once per test process by
 * esbuild (what tsx uses underneath), placed under node_modules so its packages resolve.
 * `EPUSH_IT_CLI=tsx` runs them through tsx like the servers instead.
 */
let bundled: Promise<string> | undefined;

function cliBundle(): Promise<string> {
  bundled ??= (async () => {
    const dir = join(REPO_ROOT, 'node_modules', '.cache', 'epush-integration');
    mkdirSync(dir, { recursive: true });
    const outfile = join(dir, `cli-${process.pid}.mjs`);
    process.on('exit', () => {
      rmSync(outfile, { force: true });
    });
    await build({
      entryPoints: [MAIN],
      outfile,
      bundle: true,
      packages: 'external',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      logLevel: 'error',
    });
    return outfile;
  })();
  return bundled;
}

function spawnEpush(
  args: readonly string[],
  env?: Readonly<Record<string, string>>,
  entry: readonly string[] = ['--import', 'tsx', MAIN],
): ChildProcess {
  const child = spawn(process.execPath, [...entry, ...args], {
    cwd: REPO_ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  return child;
}

function exitOf(child: ChildProcess): Promise<ExitInfo> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
}

/** Starts `epush start <flags>` and waits for its ready line. */
export function startEpush(
  flags: readonly string[],
  options: StartOptions = {},
): Promise<EpushProcess> {
  return withStartupSlot(() => startNow(flags, options));
}

async function startNow(flags: readonly string[], options: StartOptions): Promise<EpushProcess> {
  const args = [
    'start',
    ...(options.defaults === false ? [] : ['--port', '0', '--log-level', 'warn']),
    ...flags,
  ];
  const child = spawnEpush(args, options.env);
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    err += chunk;
  });
  const exited = exitOf(child);
  const timeoutMs = options.timeoutMs ?? 15_000;

  let settled = false;
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const fail = (message: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      reject(new Error(`${message}\nstdout:\n${out}\nstderr:\n${err}`));
    };
    const timer = setTimeout(() => {
      fail(`epush ${args.join(' ')} printed no ready line within ${timeoutMs} ms`);
    }, timeoutMs);
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const newline = out.indexOf('\n');
      if (settled || newline === -1) return;
      const line = out.slice(0, newline);
      const found = READY_LINE.exec(line);
      if (!found) {
        fail(`epush ${args.join(' ')}: unexpected first stdout line ${JSON.stringify(line)}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(found);
    });
    void exited.then(({ code, signal }) => {
      fail(`epush ${args.join(' ')} exited (code ${code}, signal ${signal}) before it was ready`);
    });
  });

  const [readyLine, url, host, port, nodeId, backplane] = match;
  return {
    url: url!,
    host: host!,
    port: Number(port),
    nodeId: nodeId!,
    backplane: backplane!,
    readyLine: readyLine,
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
    async terminate() {
      const started = Date.now();
      child.kill('SIGTERM');
      const info = await exited;
      return { ...info, ms: Date.now() - started };
    },
  };
}

export interface RunResult extends ExitInfo {
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/**
 * Runs the CLI to completion (for --help and refused configurations). A process still running
 * after `timeoutMs` is killed and reported with its output.
 */
export function runEpush(
  args: readonly string[],
  options: { readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number } = {},
): Promise<RunResult> {
  return withStartupSlot(() => runNow(args, options));
}

async function runNow(
  args: readonly string[],
  options: { readonly env?: Readonly<Record<string, string>>; readonly timeoutMs?: number },
): Promise<RunResult> {
  const entry = process.env.EPUSH_IT_CLI === 'tsx' ? undefined : [await cliBundle()];
  const started = Date.now();
  const child = spawnEpush(args, options.env, entry);
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const timeoutMs = options.timeoutMs ?? 15_000;
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const closed = new Promise<void>((resolve) =>
    child.once('close', () => {
      resolve();
    }),
  );
  const info = await exitOf(child);
  await closed;
  clearTimeout(timer);
  if (info.signal === 'SIGKILL') {
    throw new Error(
      `epush ${args.join(' ')} still ran after ${timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`,
    );
  }
  return { ...info, stdout, stderr, ms: Date.now() - started };
}

// --- HTTP ------------------------------------------------------------------------------------

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

export interface Delivery {
  readonly id: string;
  readonly pushId: string;
  readonly group: string | null;
  readonly payload: unknown;
}

export interface ListenAnswer {
  readonly notifications: Delivery[];
  readonly cursor: string;
  readonly expired: string[];
  readonly reconnect?: boolean;
  readonly reset?: boolean;
  readonly replaced?: boolean;
}

export interface ClusterNode {
  readonly id: string;
  readonly connections: number;
  readonly startedAt: string;
  readonly lastSeen: string;
}

export interface HttpAnswer<T = unknown> {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed JSON body; `undefined` when the body is empty or not JSON. */
  readonly body: T;
  /** Milliseconds from sending the request to the end of the answer. */
  readonly ms: number;
}

export interface RequestOptions {
  /** A value to send as JSON, or a string / Buffer sent verbatim. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

/** One HTTP exchange with global fetch; never throws on a status, only on a network failure. */
export async function request<T = unknown>(
  method: string,
  url: string,
  options: RequestOptions = {},
): Promise<HttpAnswer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  let body: string | Buffer | undefined;
  if (typeof options.body === 'string' || Buffer.isBuffer(options.body)) body = options.body;
  else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const started = Date.now();
  const response = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return {
    status: response.status,
    headers: response.headers,
    text,
    body: parsed as T,
    ms: Date.now() - started,
  };
}

function expectStatus(answer: HttpAnswer, status: number, what: string): void {
  if (answer.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${answer.status} ${answer.text}`);
  }
}

/** The application API of one node with one key (or none), typed. */
export interface Api {
  /** Any call, answered as is (for error cases). */
  call<T = unknown>(method: string, path: string, options?: RequestOptions): Promise<HttpAnswer<T>>;
  mintPushIds(count?: number): Promise<string[]>;
  mintPushId(): Promise<string>;
  addMember(group: string, pushId: string): Promise<void>;
  removeMember(group: string, pushId: string): Promise<void>;
  members(group: string): Promise<string[]>;
  /** Resolves with the notification id. `payload` undefined sends no body at all. */
  notifyGroup(group: string, payload?: unknown): Promise<string>;
  notifyPushId(pushId: string, payload?: unknown): Promise<string>;
  cluster(): Promise<ClusterNode[]>;
}

export function api(url: string, key?: string): Api {
  const auth: Record<string, string> = key === undefined ? {} : { authorization: `Bearer ${key}` };
  const call = <T>(method: string, path: string, options: RequestOptions = {}) =>
    request<T>(method, url + path, { ...options, headers: { ...auth, ...options.headers } });
  const notifyBody = (payload: unknown): RequestOptions =>
    payload === undefined ? {} : { body: { payload } };
  return {
    call,
    async mintPushIds(count) {
      const answer = await call<{ pushIds: string[] }>(
        'POST',
        '/api/push-ids',
        count === undefined ? {} : { body: { count } },
      );
      expectStatus(answer, 201, 'POST /api/push-ids');
      return answer.body.pushIds;
    },
    async mintPushId() {
      const [pushId] = await this.mintPushIds(1);
      return pushId!;
    },
    async addMember(group, pushId) {
      const path = `/api/groups/${encodeURIComponent(group)}/members/${pushId}`;
      expectStatus(await call('PUT', path), 204, `PUT ${path}`);
    },
    async removeMember(group, pushId) {
      const path = `/api/groups/${encodeURIComponent(group)}/members/${pushId}`;
      expectStatus(await call('DELETE', path), 204, `DELETE ${path}`);
    },
    async members(group) {
      const path = `/api/groups/${encodeURIComponent(group)}/members`;
      const answer = await call<{ members: string[] }>('GET', path);
      expectStatus(answer, 200, `GET ${path}`);
      return answer.body.members;
    },
    async notifyGroup(group, payload) {
      const path = `/api/groups/${encodeURIComponent(group)}/notify`;
      const answer = await call<{ id: string }>('POST', path, notifyBody(payload));
      expectStatus(answer, 202, `POST ${path}`);
      return answer.body.id;
    },
    async notifyPushId(pushId, payload) {
      const path = `/api/push-ids/${pushId}/notify`;
      const answer = await call<{ id: string }>('POST', path, notifyBody(payload));
      expectStatus(answer, 202, `POST ${path}`);
      return answer.body.id;
    },
    async cluster() {
      const answer = await call<{ nodes: ClusterNode[] }>('GET', '/api/cluster');
      expectStatus(answer, 200, 'GET /api/cluster');
      return answer.body.nodes;
    },
  };
}

/** `POST /push/listen` with any body, answered as is. */
export function listenRaw<T = ListenAnswer>(
  url: string,
  body: unknown,
  options: Omit<RequestOptions, 'body'> = {},
): Promise<HttpAnswer<T>> {
  return request<T>('POST', `${url}/push/listen`, { ...options, body });
}

/** A well-formed listen that must answer 200; resolves with the answer and its timing. */
export async function listen(
  url: string,
  pushIds: readonly string[],
  cursor: string | null = null,
  options: Omit<RequestOptions, 'body'> = {},
): Promise<ListenAnswer & { readonly ms: number }> {
  const answer = await listenRaw(url, { pushIds, cursor }, options);
  expectStatus(answer, 200, 'POST /push/listen');
  return { ...answer.body, ms: answer.ms };
}

/** A syntactically valid push ID that this server never minted. */
export function unknownPushId(): string {
  return `never-minted-${Math.random().toString(36).slice(2, 12)}`.padEnd(24, 'x');
}

/**
 * The current head cursor, at once: a listen for a push ID that was never minted is answered
 * immediately (docs/protocol.md: `expired`) with the cursor of "now".
 */
export async function headCursor(url: string): Promise<string> {
  const answer = await listen(url, [unknownPushId()]);
  return answer.cursor;
}

// --- raw sockets -----------------------------------------------------------------------------

export interface RawExchange {
  /** Everything the server sent until it closed the socket (or the wait ended). */
  readonly received: string;
  /** True when the server closed (or reset) the connection. */
  readonly closed: boolean;
  /** Milliseconds from connect to close (or to the end of the wait). */
  readonly ms: number;
}

/**
 * Opens a TCP connection, writes `data` (nothing when empty) and collects what comes back
 * until the server closes the connection or `waitMs` passes.
 */
export function rawExchange(
  port: number,
  data: string | Buffer,
  waitMs: number,
  host = '127.0.0.1',
): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect({ port, host });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({
        received: Buffer.concat(chunks).toString('latin1'),
        closed,
        ms: Date.now() - started,
      });
    };
    const timer = setTimeout(() => {
      finish(false);
    }, waitMs);
    socket.on('connect', () => {
      if (data.length > 0) socket.write(data);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => {
      finish(true);
    });
    socket.on('close', () => {
      finish(true);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') finish(true);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

/** Splits a raw HTTP/1.1 answer into status, headers and body. */
export function parseRawResponse(raw: string): {
  status: number;
  headers: Map<string, string>;
  body: string;
} {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0)
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status, headers, body: end === -1 ? '' : raw.slice(end + 4) };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a defined value or `timeoutMs` passes (then the last error). */
export async function eventually<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  what: string,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Polls `check` until it holds; resolves with the milliseconds it took, or throws naming `what`. */
export async function until(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<number> {
  const started = Date.now();
  while (!(await check())) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting until ${what}`);
    await sleep(everyMs);
  }
  return Date.now() - started;
}
