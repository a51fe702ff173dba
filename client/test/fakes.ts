// Test doubles for the browser client: a clock driven by hand, Web Locks, localStorage with
// cross-tab `storage` events, BroadcastChannel, and a small model of the push server's listen
// protocol (docs/protocol.md). A "tab" is one EPushClient with its own window, timers and lock holder,
// which can be closed gracefully or killed (a crash: nothing of it runs any more).
import { setImmediate as nextTurn } from 'node:timers/promises';
import type {
  BroadcastChannelConstructor,
  BroadcastChannelLike,
  Clock,
  FetchInit,
  FetchLike,
  LockManagerLike,
  ResponseLike,
  StorageLike,
  TimerHandle,
  WindowEventLike,
  WindowLike,
} from '../src/types.js';

/** Lets every pending promise callback and microtask run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await nextTurn();
}

// --- time -------------------------------------------------------------------------------------

interface FakeTimer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
  readonly scope: ClockScope | null;
}

/** Time moves only in `advance()`; timers fire in order, with promises settled between them. */
export class FakeClock implements Clock {
  nowMs = 1_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, FakeTimer>();

  readonly now = (): number => this.nowMs;

  readonly setTimeout = (callback: () => void, ms: number): TimerHandle =>
    this.add(callback, ms, null);

  readonly clearTimeout = (handle: TimerHandle): void => {
    this.timers.delete(handle as number);
  };

  add(callback: () => void, ms: number, scope: ClockScope | null): number {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.nowMs + Math.max(0, ms), callback, scope });
    return id;
  }

  /** Timers of one tab, all cancelled when it is killed. */
  scope(): ClockScope {
    return new ClockScope(this);
  }

  dropScope(scope: ClockScope): void {
    for (const [id, timer] of this.timers) if (timer.scope === scope) this.timers.delete(id);
  }

  get pending(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing every timer due on the way. */
  async advance(ms: number): Promise<void> {
    const end = this.nowMs + ms;
    await settle();
    for (let fired = 0; ; fired++) {
      if (fired > 100_000) throw new Error('FakeClock: timers keep firing (a hot loop?)');
      let next: FakeTimer | null = null;
      for (const timer of this.timers.values()) {
        if (
          timer.at <= end &&
          (!next || timer.at < next.at || (timer.at === next.at && timer.id < next.id))
        ) {
          next = timer;
        }
      }
      if (!next) break;
      this.timers.delete(next.id);
      this.nowMs = Math.max(this.nowMs, next.at);
      next.callback();
      await settle();
    }
    this.nowMs = end;
    await settle();
  }
}

export class ClockScope implements Clock {
  dead = false;
  constructor(private readonly clock: FakeClock) {}
  readonly now = (): number => this.clock.now();
  readonly setTimeout = (callback: () => void, ms: number): TimerHandle =>
    this.dead ? -1 : this.clock.add(callback, ms, this);
  readonly clearTimeout = (handle: TimerHandle): void => {
    this.clock.clearTimeout(handle);
  };
  kill(): void {
    this.dead = true;
    this.clock.dropScope(this);
  }
}

// --- Web Locks --------------------------------------------------------------------------------

interface LockRequest {
  readonly holder: LockHolder;
  readonly callback: (lock: unknown) => Promise<void>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

/** Exclusive Web Locks shared by the tabs of one fake browser. */
export class FakeLocks {
  private readonly held = new Map<string, LockRequest>();
  private readonly queues = new Map<string, LockRequest[]>();

  /** The `navigator.locks` of one tab. */
  holder(): LockHolder {
    return new LockHolder(this);
  }

  holderOf(name: string): LockHolder | null {
    return this.held.get(name)?.holder ?? null;
  }

  enqueue(name: string, request: LockRequest, signal: AbortSignal | undefined): void {
    if (signal?.aborted) {
      request.reject(new DOMException('aborted', 'AbortError'));
      return;
    }
    const queue = this.queues.get(name) ?? [];
    queue.push(request);
    this.queues.set(name, queue);
    signal?.addEventListener('abort', () => {
      const index = queue.indexOf(request);
      if (index >= 0) {
        queue.splice(index, 1);
        request.reject(new DOMException('aborted', 'AbortError'));
      }
    });
    this.pump(name);
  }

  /** A crashed tab: the browser releases its locks and forgets its waiting requests. */
  releaseAll(holder: LockHolder): void {
    for (const [name, queue] of this.queues) {
      this.queues.set(
        name,
        queue.filter((request) => request.holder !== holder),
      );
    }
    for (const [name, request] of this.held) {
      if (request.holder === holder) {
        this.held.delete(name);
        this.pump(name);
      }
    }
  }

  private pump(name: string): void {
    if (this.held.has(name)) return;
    const request = this.queues.get(name)?.shift();
    if (!request) return;
    this.held.set(name, request);
    queueMicrotask(() => {
      if (request.holder.dead) return;
      request
        .callback({ name })
        .then(request.resolve, request.reject)
        .finally(() => {
          if (this.held.get(name) === request) {
            this.held.delete(name);
            this.pump(name);
          }
        });
    });
  }
}

export class LockHolder implements LockManagerLike {
  dead = false;
  constructor(private readonly locks: FakeLocks) {}
  request(
    name: string,
    options: { signal?: AbortSignal },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.locks.enqueue(name, { holder: this, callback, resolve, reject }, options.signal);
    });
  }
  kill(): void {
    this.dead = true;
    this.locks.releaseAll(this);
  }
}

// --- window and localStorage ------------------------------------------------------------------

export class FakeWindow implements WindowLike {
  dead = false;
  private readonly listeners = new Map<string, Set<(event: WindowEventLike) => void>>();

  addEventListener(type: string, listener: (event: WindowEventLike) => void): void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
  }

  removeEventListener(type: string, listener: (event: WindowEventLike) => void): void {
    this.listeners.get(type)?.delete(listener);
  }

  dispatch(event: WindowEventLike): void {
    if (this.dead) return;
    for (const listener of [...(this.listeners.get(event.type) ?? [])]) listener(event);
  }

  listenerCount(type: string): number {
    return this.listeners.get(type)?.size ?? 0;
  }
}

/** One origin's localStorage: a write fires `storage` in every other window, as browsers do. */
export class FakeStorageArea {
  readonly data = new Map<string, string>();
  private readonly windows = new Set<FakeWindow>();
  writes = 0;

  /** The `localStorage` of the tab whose window is `window`. */
  forWindow(window: FakeWindow): StorageLike {
    this.windows.add(window);
    return {
      getItem: (key) => this.data.get(key) ?? null,
      setItem: (key, value) => {
        this.writes += 1;
        this.data.set(key, value);
        this.notify(window, key, value);
      },
      removeItem: (key) => {
        if (!this.data.has(key)) return;
        this.data.delete(key);
        this.notify(window, key, null);
      },
    };
  }

  private notify(source: FakeWindow, key: string, newValue: string | null): void {
    for (const window of this.windows) {
      if (window === source) continue;
      queueMicrotask(() => {
        window.dispatch({ type: 'storage', key, newValue });
      });
    }
  }
}

// --- BroadcastChannel -------------------------------------------------------------------------

/** BroadcastChannel between the tabs of one fake browser: structured clone, never to oneself. */
export class FakeBroadcastNetwork {
  private readonly channels = new Set<FakeChannel>();
  private readonly queued: (() => void)[] = [];
  posted = 0;
  /** While paused, messages wait (a slow tab channel); `resume()` delivers them in order. */
  paused = false;

  resume(): void {
    this.paused = false;
    for (const deliver of this.queued.splice(0)) deliver();
  }

  /** Drops what waits (messages a crashing tab posted that never arrive), and unpauses. */
  dropQueued(): void {
    this.paused = false;
    this.queued.length = 0;
  }

  /** The `BroadcastChannel` constructor of one tab; `kill()` closes all it opened. */
  forTab(): { ctor: BroadcastChannelConstructor; kill: () => void } {
    const mine: FakeChannel[] = [];
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const network = this;
    class TabChannel extends FakeChannel {
      constructor(name: string) {
        super(network, name);
        mine.push(this);
      }
    }
    return {
      ctor: TabChannel,
      kill: () => {
        for (const channel of mine) channel.close();
      },
    };
  }

  join(channel: FakeChannel): void {
    this.channels.add(channel);
  }

  leave(channel: FakeChannel): void {
    this.channels.delete(channel);
  }

  send(from: FakeChannel, message: unknown): void {
    this.posted += 1;
    for (const channel of this.channels) {
      if (channel === from || channel.name !== from.name) continue;
      const data: unknown = structuredClone(message);
      const deliver = (): void => {
        queueMicrotask(() => {
          channel.receive(data);
        });
      };
      if (this.paused) this.queued.push(deliver);
      else deliver();
    }
  }
}

class FakeChannel implements BroadcastChannelLike {
  private closed = false;
  private readonly listeners: ((event: { readonly data: unknown }) => void)[] = [];

  constructor(
    private readonly network: FakeBroadcastNetwork,
    readonly name: string,
  ) {
    network.join(this);
  }

  postMessage(message: unknown): void {
    if (this.closed) throw new DOMException('closed', 'InvalidStateError');
    this.network.send(this, message);
  }

  addEventListener(_type: 'message', listener: (event: { readonly data: unknown }) => void): void {
    this.listeners.push(listener);
  }

  receive(data: unknown): void {
    if (this.closed) return;
    for (const listener of this.listeners) listener({ data });
  }

  close(): void {
    this.closed = true;
    this.network.leave(this);
  }
}

// --- the push server --------------------------------------------------------------------------

interface LogEvent {
  readonly seq: number;
  readonly id: string;
  readonly pushIds: ReadonlySet<string>;
  readonly group: string | null;
  readonly payload: unknown;
}

interface HeldListen {
  readonly client: string;
  readonly pushIds: ReadonlySet<string>;
  readonly from: number;
  readonly epoch: string;
  timer: TimerHandle | null;
  readonly answer: (status: number, body: unknown) => void;
}

export interface ListenBody {
  readonly pushIds: string[];
  readonly cursor: string | null;
}

export type Fault =
  | { readonly kind: 'network' }
  | {
      readonly kind: 'status';
      readonly status: number;
      readonly code?: string;
      /** Sent as the Retry-After header (seconds). */
      readonly retryAfter?: string;
    }
  | { readonly kind: 'hang' }
  | { readonly kind: 'reconnect' };

/**
 * The listen protocol of docs/protocol.md over an ordered log: cursors `e1-<seq base36>`, `null` means
 * from now, answers at once when there is a backlog, otherwise after `holdMs`; a newer listen
 * sharing a push ID displaces the older (`replaced`). Faults can be queued per request.
 */
export class FakePushServer {
  epoch = 'e1';
  holdMs = 25_000;
  /** Cursors at or below this seq answer `reset` (retention passed). */
  retainedAfter = 0;
  readonly expired = new Set<string>();
  readonly requests: { client: string; body: ListenBody; contentType: string | undefined }[] = [];
  readonly faults: Fault[] = [];
  maxConcurrent = 0;
  private readonly log: LogEvent[] = [];
  private seq = 0;
  private nextId = 1;
  private held: HeldListen[] = [];

  constructor(private readonly clock: Clock) {}

  get head(): string {
    return `${this.epoch}-${this.seq.toString(36)}`;
  }

  /** Listens currently held open (what the server would count as connections). */
  get open(): number {
    return this.held.length;
  }

  heldPushIds(): string[][] {
    return this.held.map((listen) => [...listen.pushIds].sort());
  }

  lastBody(): ListenBody {
    const last = this.requests[this.requests.length - 1];
    if (!last) throw new Error('no request yet');
    return last.body;
  }

  notify(pushIds: string | string[], payload: unknown = null, group: string | null = null): string {
    this.seq += 1;
    const event: LogEvent = {
      seq: this.seq,
      id: `n${this.nextId++}`,
      pushIds: new Set(typeof pushIds === 'string' ? [pushIds] : pushIds),
      group,
      payload,
    };
    this.log.push(event);
    for (const listen of [...this.held]) {
      const deliveries = this.deliveriesFor(listen.pushIds, listen.from);
      if (deliveries.length > 0) this.finish(listen, this.answerBody(deliveries, []));
    }
    return event.id;
  }

  /** The `fetch` of one tab (a client name lets a crash drop its held listens). */
  fetchFor(client: string): FetchLike {
    return (url, init) => this.fetch(client, url, init);
  }

  /** A crashed tab: its held listens vanish without an answer. */
  dropClient(client: string): void {
    this.held = this.held.filter((listen) => {
      if (listen.client !== client) return true;
      if (listen.timer !== null) this.clock.clearTimeout(listen.timer);
      return false;
    });
  }

  /** Answers every held listen with `reconnect` (a draining node). */
  drain(): void {
    for (const listen of [...this.held]) {
      this.finish(listen, {
        notifications: [],
        cursor: this.cursorAfter(listen),
        expired: [],
        reconnect: true,
      });
    }
  }

  private fetch(client: string, url: string, init: FetchInit): Promise<ResponseLike> {
    return new Promise<ResponseLike>((resolve, reject) => {
      if (!url.endsWith('/push/listen') || init.method !== 'POST') {
        resolve(response(404, { error: { code: 'not_found', message: url } }));
        return;
      }
      const body = JSON.parse(init.body) as ListenBody;
      this.requests.push({ client, body, contentType: init.headers['Content-Type'] });
      const abort = (): void => {
        reject(new DOMException('The operation was aborted.', 'AbortError'));
      };
      if (init.signal.aborted) {
        abort();
        return;
      }
      const fault = this.faults.shift();
      if (fault?.kind === 'network') {
        reject(new TypeError('Failed to fetch'));
        return;
      }
      if (fault?.kind === 'status') {
        const code = fault.code ?? (fault.status >= 500 ? 'not_ready' : 'invalid_body');
        resolve(
          response(
            fault.status,
            { error: { code, message: `fault ${fault.status}` } },
            fault.retryAfter,
          ),
        );
        return;
      }
      if (fault?.kind === 'hang') {
        init.signal.addEventListener('abort', abort);
        return;
      }
      let from = this.seq;
      if (body.cursor !== null) {
        const match = /^([a-z0-9]+)-([0-9a-z]+)$/.exec(body.cursor);
        if (!match) {
          resolve(response(400, { error: { code: 'invalid_cursor', message: 'bad cursor' } }));
          return;
        }
        from = parseInt(match[2] ?? '0', 36);
        if (match[1] !== this.epoch || from < this.retainedAfter) {
          resolve(
            response(200, { notifications: [], cursor: this.head, expired: [], reset: true }),
          );
          return;
        }
      }
      if (fault?.kind === 'reconnect') {
        resolve(
          response(200, {
            notifications: [],
            cursor: body.cursor ?? this.head,
            expired: [],
            reconnect: true,
          }),
        );
        return;
      }
      const pushIds = new Set(body.pushIds);
      const expired = body.pushIds.filter((id) => this.expired.has(id));
      const deliveries = this.deliveriesFor(pushIds, from);
      if (expired.length > 0 || deliveries.length > 0) {
        resolve(response(200, this.answerBody(deliveries, expired)));
        return;
      }
      const listen: HeldListen = {
        client,
        pushIds,
        from,
        epoch: this.epoch,
        timer: null,
        answer: (status, answer) => {
          init.signal.removeEventListener('abort', onAbort);
          resolve(response(status, answer));
        },
      };
      const onAbort = (): void => {
        this.remove(listen);
        abort();
      };
      init.signal.addEventListener('abort', onAbort);
      for (const other of [...this.held]) {
        if ([...other.pushIds].some((id) => pushIds.has(id))) {
          this.finish(other, {
            notifications: [],
            cursor: this.cursorAfter(other),
            expired: [],
            replaced: true,
          });
        }
      }
      listen.timer = this.clock.setTimeout(() => {
        listen.timer = null;
        this.finish(listen, { notifications: [], cursor: this.head, expired: [] });
      }, this.holdMs);
      this.held.push(listen);
      this.maxConcurrent = Math.max(this.maxConcurrent, this.held.length);
    });
  }

  /** Where a displaced or drained listen stands: its own epoch, as the real server answers. */
  private cursorAfter(listen: HeldListen): string {
    return `${listen.epoch}-${Math.max(listen.from, listen.epoch === this.epoch ? this.seq : 0).toString(36)}`;
  }

  private deliveriesFor(
    pushIds: ReadonlySet<string>,
    from: number,
  ): { event: LogEvent; pushId: string }[] {
    const out: { event: LogEvent; pushId: string }[] = [];
    for (const event of this.log) {
      if (event.seq <= from) continue;
      for (const pushId of event.pushIds) if (pushIds.has(pushId)) out.push({ event, pushId });
    }
    return out;
  }

  private answerBody(
    deliveries: { event: LogEvent; pushId: string }[],
    expired: string[],
  ): unknown {
    return {
      notifications: deliveries.map(({ event, pushId }) => ({
        id: event.id,
        pushId,
        group: event.group,
        payload: event.payload,
      })),
      cursor: this.head,
      expired,
    };
  }

  private finish(listen: HeldListen, body: unknown): void {
    this.remove(listen);
    listen.answer(200, body);
  }

  private remove(listen: HeldListen): void {
    const index = this.held.indexOf(listen);
    if (index >= 0) this.held.splice(index, 1);
    if (listen.timer !== null) this.clock.clearTimeout(listen.timer);
    listen.timer = null;
  }
}

function response(status: number, body: unknown, retryAfter?: string): ResponseLike {
  const text = JSON.stringify(body);
  return {
    ok: status >= 200 && status < 300,
    status,
    headers: { get: (name: string) => (name === 'retry-after' ? (retryAfter ?? null) : null) },
    text: () => Promise.resolve(text),
  };
}

/** Push IDs shaped like the server's (22 base64url characters). */
export function pushId(label: string): string {
  return `${label}${'x'.repeat(22)}`.slice(0, 22).replace(/[^A-Za-z0-9_-]/g, '_');
}

export const quietLogger = {
  warnings: [] as unknown[][],
  errors: [] as unknown[][],
  warn(...args: unknown[]): void {
    this.warnings.push(args);
  },
  error(...args: unknown[]): void {
    this.errors.push(args);
  },
};

export function newLogger(): typeof quietLogger {
  return { ...quietLogger, warnings: [], errors: [] };
}
