import type {
  Clock,
  LockManagerLike,
  Logger,
  StorageLike,
  TimerHandle,
  WindowEventLike,
  WindowLike,
} from './types.js';

/**
 * Who holds the site's one connection. Exactly one tab at a time should lead; a short overlap is
 * tolerated (the server answers the displaced listen with `replaced`, the tabs dedupe), a gap
 * only delays delivery (the new leader resumes from the shared cursor).
 *
 * `onChange(true)` fires when this tab becomes leader; `onChange(false)` when it loses leadership
 * without having asked to (only the lease can be lost that way). `stop()` resigns or stops
 * waiting, and no `onChange` follows it.
 */
export interface Leadership {
  readonly kind: 'web-locks' | 'lease' | 'solo';
  readonly isLeader: boolean;
  start(): void;
  stop(): void;
  /** A hint that the leader may be gone (it said `resign`): check now rather than on schedule. */
  poke(): void;
}

/**
 * Web Locks: the leader holds an exclusive lock for its whole life; the browser hands it to the
 * next waiting tab the moment the holder closes, crashes or navigates away. No timers, no clock.
 */
export class WebLocksLeadership implements Leadership {
  readonly kind = 'web-locks' as const;
  private held = false;
  private abort: AbortController | null = null;
  private release: (() => void) | null = null;

  constructor(
    private readonly locks: LockManagerLike,
    private readonly name: string,
    private readonly onChange: (leader: boolean) => void,
    private readonly logger: Logger,
  ) {}

  get isLeader(): boolean {
    return this.held;
  }

  start(): void {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    let request: Promise<unknown>;
    try {
      request = this.locks.request(this.name, { signal: abort.signal }, (): Promise<void> => {
        if (abort.signal.aborted) return Promise.resolve();
        return new Promise<void>((resolve) => {
          this.held = true;
          this.release = resolve;
          this.onChange(true);
        });
      });
    } catch (error) {
      request = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    request.catch((error: unknown) => {
      if (abort.signal.aborted) return; // stop() while waiting
      // E.g. a sandboxed document may not use locks: lead alone rather than never connect.
      this.logger.warn('epush: Web Locks failed, this tab connects on its own', error);
      this.held = true;
      this.onChange(true);
    });
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
    this.held = false;
    this.release?.();
    this.release = null;
  }

  poke(): void {
    // The browser hands the lock over by itself.
  }
}

/** Lease timings (ms): renewed every 500 ms, valid 1.5 s, so a crashed leader is replaced < 2 s. */
export interface LeaseTimings {
  readonly renewMs: number;
  readonly leaseMs: number;
  /** After writing a claim, how long to wait before reading it back to confirm it won. */
  readonly settleMs: number;
}

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { renewMs: 500, leaseMs: 1500, settleMs: 100 };

interface Lease {
  readonly owner: string;
  readonly expires: number;
}

/**
 * Fallback where Web Locks is missing (old browsers, insecure origins): a lease in localStorage,
 * `{"owner", "expires"}`. The leader renews it every `renewMs`; a follower checks when the lease
 * should have been renewed (at most every `renewMs`, and right at its expiry) and claims it once
 * it has expired, or at once when the leader removes it on leaving. localStorage has no
 * compare-and-set, so a claim is confirmed by reading it back after `settleMs`; a leader that
 * finds someone else's valid lease on renewal steps down, which heals a rare double claim.
 * Worst-case takeover after a crash: `leaseMs + settleMs` (1.6 s with the defaults).
 */
export class LeaseLeadership implements Leadership {
  readonly kind = 'lease' as const;
  private leader = false;
  private running = false;
  private confirming = false;
  private timer: TimerHandle | null = null;
  private readonly onStorage = (event: WindowEventLike): void => {
    if (event.key !== this.key || this.leader || this.confirming) return;
    if (event.newValue === null || event.newValue === undefined) this.poke();
  };

  constructor(
    private readonly storage: StorageLike,
    private readonly window: WindowLike | null,
    private readonly key: string,
    private readonly owner: string,
    private readonly clock: Clock,
    private readonly onChange: (leader: boolean) => void,
    private readonly timings: LeaseTimings = DEFAULT_LEASE_TIMINGS,
  ) {}

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.window?.addEventListener('storage', this.onStorage);
    this.tick();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.window?.removeEventListener('storage', this.onStorage);
    this.clearTimer();
    this.confirming = false;
    if (this.read()?.owner === this.owner) this.remove();
    this.leader = false;
  }

  poke(): void {
    if (!this.running || this.leader || this.confirming) return;
    this.clearTimer();
    this.tick();
  }

  private tick(): void {
    if (!this.running) return;
    const now = this.clock.now();
    const lease = this.read();
    const foreign = lease !== null && lease.owner !== this.owner && lease.expires > now;
    if (this.leader) {
      if (foreign) {
        this.leader = false;
        this.onChange(false);
        this.schedule(
          () => {
            this.tick();
          },
          this.followerDelay(lease, now),
        );
        return;
      }
      this.write(now);
      this.schedule(() => {
        this.tick();
      }, this.timings.renewMs);
      return;
    }
    if (foreign) {
      this.schedule(
        () => {
          this.tick();
        },
        this.followerDelay(lease, now),
      );
      return;
    }
    this.write(now);
    this.confirming = true;
    this.schedule(() => {
      this.confirm();
    }, this.timings.settleMs);
  }

  private confirm(): void {
    this.confirming = false;
    if (!this.running) return;
    const lease = this.read();
    if (lease?.owner === this.owner) {
      this.leader = true;
      this.schedule(
        () => {
          this.tick();
        },
        Math.max(0, this.timings.renewMs - this.timings.settleMs),
      );
      this.onChange(true);
      return;
    }
    this.tick();
  }

  /** A follower looks again when the lease should have been renewed, or right after it expires. */
  private followerDelay(lease: Lease | null, now: number): number {
    if (!lease) return this.timings.renewMs;
    return Math.max(1, Math.min(this.timings.renewMs, lease.expires - now + 1));
  }

  private schedule(callback: () => void, ms: number): void {
    this.clearTimer();
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      callback();
    }, ms);
  }

  private clearTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private read(): Lease | null {
    try {
      const raw = this.storage.getItem(this.key);
      if (raw === null) return null;
      const value: unknown = JSON.parse(raw);
      if (
        typeof value === 'object' &&
        value !== null &&
        'owner' in value &&
        'expires' in value &&
        typeof value.owner === 'string' &&
        typeof value.expires === 'number'
      ) {
        return { owner: value.owner, expires: value.expires };
      }
    } catch {
      // unreadable: treated as no lease
    }
    return null;
  }

  private write(now: number): void {
    try {
      this.storage.setItem(
        this.key,
        JSON.stringify({ owner: this.owner, expires: now + this.timings.leaseMs }),
      );
    } catch {
      // A full or failing storage: the read-back decides.
    }
  }

  private remove(): void {
    try {
      this.storage.removeItem(this.key);
    } catch {
      // nothing to do
    }
  }
}

/** No way to coordinate with other tabs: this tab leads its own connection. */
export class SoloLeadership implements Leadership {
  readonly kind = 'solo' as const;
  private leader = false;
  private running = false;

  constructor(private readonly onChange: (leader: boolean) => void) {}

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    queueMicrotask(() => {
      if (!this.running || this.leader) return;
      this.leader = true;
      this.onChange(true);
    });
  }

  stop(): void {
    this.running = false;
    this.leader = false;
  }

  poke(): void {
    // always leads
  }
}

/** What choosing a leadership needs from the environment. */
export interface LeadershipEnvironment {
  readonly channelName: string;
  readonly locks: LockManagerLike | null;
  readonly localStorage: StorageLike | null;
  readonly window: WindowLike | null;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * Web Locks where the browser has them, else the localStorage lease; a tab that cannot talk to
 * the others (`shared` false) or has neither leads alone.
 */
export function chooseLeadership(
  env: LeadershipEnvironment,
  shared: boolean,
  tabId: string,
  onChange: (leader: boolean) => void,
): Leadership {
  if (!shared) return new SoloLeadership(onChange);
  if (env.locks) return new WebLocksLeadership(env.locks, env.channelName, onChange, env.logger);
  if (env.localStorage) {
    const key = `${env.channelName}:lease`;
    return new LeaseLeadership(env.localStorage, env.window, key, tabId, env.clock, onChange);
  }
  return new SoloLeadership(onChange);
}
