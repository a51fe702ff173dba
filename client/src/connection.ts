import { Backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffCeiling } from './backoff.js';
import { compareCursors, oldestCursor } from './cursor.js';
import type { Transport, TransportFailure, TransportSession } from './transports/transport.js';
import type { Clock, ConnectionStatus, ListenAnswer, Logger, TimerHandle } from './types.js';

/** Most push IDs one listen carries (docs/protocol.md); a larger union is split into several listens. */
export const MAX_PUSH_IDS_PER_LISTEN = 100;

export interface ConnectionEvents {
  /** Every answer, after the connection's cursor has moved past it. */
  answer(answer: ListenAnswer): void;
  status(status: ConnectionStatus): void;
  /** The server refused the cursor (`invalid_cursor`); listening goes on "from now". */
  cursorInvalid(): void;
  /**
   * The server refused listen tokens (403 `forbidden` naming push IDs): `used` maps each of
   * them to the token that was sent ('' for none). The handler is expected to listen on
   * another union (without them); if it does not, the listen is retried with backoff.
   */
  forbidden?(
    pushIds: readonly string[],
    message: string,
    used: Readonly<Record<string, string>>,
  ): void;
}

export interface ConnectionOptions {
  readonly transport: Transport;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  readonly events: ConnectionEvents;
  /** Where to resume from (the shared cursor), null for "from now". */
  readonly cursor: string | null;
  /** Whether the site was connected before (through another leader): then `reconnecting`, not `connecting`. */
  readonly wasConnected: boolean;
  readonly online: boolean;
  /** The listen token of a push ID, read when a listen starts; none by default. */
  readonly tokenOf?: (pushId: string) => string | null;
}

/** One listen of at most 100 push IDs, resumed from its own cursor. */
class Slot {
  session: TransportSession | null = null;
  retryTimer: TimerHandle | null = null;
  /** Established since its last failure. */
  opened: boolean;
  failing = false;
  /** Consecutive answers flagged `reconnect`, `replaced` or `reset`. */
  flagged = 0;
  /** The listen tokens the current session was opened with (parallel to `pushIds`). */
  sentTokens: readonly (string | null)[] | null = null;

  constructor(
    readonly pushIds: readonly string[],
    public cursor: string | null,
    opened: boolean,
  ) {
    this.opened = opened;
  }
}

/**
 * The leader's listen loop over the union of the site's push IDs: keeps one transport session
 * per 100 push IDs, retries failures with jittered exponential backoff (0.5 s doubling to 30 s,
 * reset by any answer), honours `reconnect` (listen again at once) and derives the status.
 *
 * Ordering contract: `listenOn()` closes every session synchronously before anything else
 * happens, so an answer for the old union can never move the cursor past notifications of a
 * push ID that just joined; the new listens start from the cursor as it was.
 */
export class Connection {
  private slots: Slot[] = [];
  private readonly backoff: Backoff;
  /** The resume point while no slot exists, and the fallback when cursors are not comparable. */
  private latestCursor: string | null;
  private online: boolean;
  private everConnected: boolean;
  private closed = false;
  /** While failing, new listens wait until then instead of hammering a sick server. */
  private retryAt = 0;
  private currentStatus: ConnectionStatus;

  constructor(private readonly options: ConnectionOptions) {
    this.backoff = new Backoff(options.random);
    this.latestCursor = options.cursor;
    this.online = options.online;
    this.everConnected = options.wasConnected;
    this.currentStatus = this.computeStatus();
  }

  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** The cursor every listen could resume from: all notifications up to it were delivered. */
  get cursor(): string | null {
    if (this.slots.length === 0) return this.latestCursor;
    return oldestCursor(
      this.slots.map((slot) => slot.cursor),
      this.latestCursor,
    );
  }

  /** Consecutive failures (for tests and diagnostics). */
  get failures(): number {
    return this.backoff.attempts;
  }

  /** The push IDs of each listen currently held or pending. */
  get listens(): readonly (readonly string[])[] {
    return this.slots.map((slot) => slot.pushIds);
  }

  /**
   * Listens on exactly `pushIds` (sorted, unique) from the current cursor, replacing all listens;
   * from `rewindTo` instead when that is older (comparable) than the current cursor.
   */
  listenOn(pushIds: readonly string[], rewindTo: string | null = null): void {
    if (this.closed) return;
    let cursor = this.cursor;
    if (rewindTo !== null && cursor !== null && (compareCursors(rewindTo, cursor) ?? 0) < 0) {
      cursor = rewindTo;
    }
    const opened = this.currentStatus === 'connected';
    this.stopSlots();
    this.latestCursor = cursor;
    for (let i = 0; i < pushIds.length; i += MAX_PUSH_IDS_PER_LISTEN) {
      this.slots.push(new Slot(pushIds.slice(i, i + MAX_PUSH_IDS_PER_LISTEN), cursor, opened));
    }
    const wait = Math.max(0, this.retryAt - this.options.clock.now());
    for (const slot of this.slots) this.startAfter(slot, wait);
    this.updateStatus();
  }

  /** `navigator.onLine` changes: offline pauses everything; online retries at once. */
  setOnline(online: boolean): void {
    if (this.closed || online === this.online) return;
    this.online = online;
    this.backoff.reset();
    this.retryAt = 0;
    // Same push IDs and cursor; the new listens start only while online.
    this.listenOn(this.slots.flatMap((slot) => slot.pushIds));
  }

  close(): void {
    if (this.closed) return;
    this.latestCursor = this.cursor;
    this.closed = true;
    this.stopSlots();
  }

  // --- internals -----------------------------------------------------------------------------

  private startAfter(slot: Slot, ms: number): void {
    if (this.closed || !this.online) return;
    if (slot.retryTimer !== null) this.options.clock.clearTimeout(slot.retryTimer);
    slot.retryTimer = null;
    if (ms <= 0) {
      this.start(slot);
      return;
    }
    slot.retryTimer = this.options.clock.setTimeout(() => {
      slot.retryTimer = null;
      this.start(slot);
    }, ms);
  }

  private start(slot: Slot): void {
    if (this.closed || !this.online || !this.slots.includes(slot)) return;
    const listenTokens = this.tokensFor(slot.pushIds);
    slot.sentTokens = listenTokens;
    const session = this.options.transport.open(
      listenTokens === null
        ? { pushIds: slot.pushIds, cursor: slot.cursor }
        : { pushIds: slot.pushIds, cursor: slot.cursor, listenTokens },
      {
        opened: () => {
          if (slot.session !== session) return;
          slot.opened = true;
          slot.failing = false;
          this.everConnected = true;
          this.updateStatus();
        },
        answer: (answer) => {
          if (slot.session === session) this.onAnswer(slot, session, answer);
        },
        failed: (failure) => {
          if (slot.session === session) this.onFailed(slot, failure);
        },
      },
    );
    slot.session = session;
  }

  private onAnswer(slot: Slot, session: TransportSession, answer: ListenAnswer): void {
    slot.cursor = answer.cursor;
    this.latestCursor = answer.cursor;
    slot.opened = true;
    slot.failing = false;
    this.everConnected = true;
    const flagged = answer.reconnect || answer.replaced || answer.reset;
    if (!flagged) slot.flagged = 0;
    this.backoff.reset();
    this.retryAt = 0;
    this.updateStatus();
    this.options.events.answer(answer);
    // The answer's handler may have replaced every listen (a union change): then we are done.
    if (slot.session !== session || this.closed || !flagged) return;
    // Answers that ask to listen again come back at once, so a run of them must not become a
    // hot loop: the first is followed at once, the next ones back off.
    slot.flagged += 1;
    if (answer.replaced) {
      // Someone else listens on these push IDs (another browser with the same IDs, or a brief
      // double leader): yield a little so the two do not keep replacing each other.
      this.restart(slot, this.jitter(slot.flagged - 1));
    } else {
      // `reconnect`: the node drains, listen again so the load balancer picks another node (a
      // kept-alive connection may stick to the draining node for a while). `reset`: continue
      // from the new cursor.
      this.restart(slot, slot.flagged === 1 ? 0 : this.jitter(slot.flagged - 2));
    }
  }

  /** The tokens of `pushIds` (parallel), or null when none has one. */
  private tokensFor(pushIds: readonly string[]): (string | null)[] | null {
    const { tokenOf } = this.options;
    if (tokenOf === undefined) return null;
    const tokens = pushIds.map(tokenOf);
    return tokens.some((token) => token !== null) ? tokens : null;
  }

  private onFailed(slot: Slot, failure: TransportFailure): void {
    slot.session = null;
    const refused = failure.code === 'forbidden' ? failure.pushIds : undefined;
    const { events } = this.options;
    if (refused !== undefined && refused.length > 0 && events.forbidden !== undefined) {
      const used: Record<string, string> = {};
      for (const id of refused) {
        const index = slot.pushIds.indexOf(id);
        used[id] = (index < 0 ? null : slot.sentTokens?.[index]) ?? '';
      }
      // Not a transport failure: the handler re-listens without these push IDs, at once.
      events.forbidden(refused, failure.message, used);
      if (this.closed || !this.slots.includes(slot)) return;
    }
    if (failure.code === 'invalid_cursor' && slot.cursor !== null) {
      this.options.logger.warn(
        'epush: the server refused the cursor; listening from now on',
        failure.message,
      );
      for (const other of this.slots) other.cursor = null;
      this.latestCursor = null;
      this.options.events.cursorInvalid();
      if (this.slots.includes(slot)) this.startAfter(slot, 0);
      return;
    }
    this.log(failure);
    const backoffMs = this.backoff.next();
    const { retryAfterMs } = failure;
    // The server's Retry-After (a full node, a rate limit, a backplane outage) is a floor: never
    // sooner, and spread by up to half again, so the browsers it refused at once do not all
    // come back in the same instant.
    const delay =
      retryAfterMs === undefined || retryAfterMs <= backoffMs
        ? backoffMs
        : retryAfterMs + Math.floor(this.options.random() * (retryAfterMs / 2));
    this.retryAt = this.options.clock.now() + delay;
    slot.failing = true;
    slot.opened = false;
    this.updateStatus();
    this.startAfter(slot, delay);
  }

  private restart(slot: Slot, ms: number): void {
    slot.session?.close();
    slot.session = null;
    this.startAfter(slot, ms);
  }

  private jitter(attempt: number): number {
    return Math.floor(
      this.options.random() * backoffCeiling(attempt, BACKOFF_BASE_MS, BACKOFF_CAP_MS),
    );
  }

  private log(failure: TransportFailure): void {
    const { logger } = this.options;
    if (
      failure.kind === 'http' &&
      failure.status !== undefined &&
      failure.status < 500 &&
      failure.status !== 429
    ) {
      // A 4xx is a bug (ours or a misconfiguration such as CORS or a wrong URL): say so loudly.
      logger.error(`epush: listen refused (${failure.message}); retrying with backoff`);
    } else if (failure.kind === 'timeout' || failure.kind === 'protocol') {
      logger.warn(`epush: listen abandoned (${failure.message}); retrying with backoff`);
    }
    // Network errors and 5xx/429 are routine (offline, deploys): retried quietly.
  }

  private stopSlots(): void {
    for (const slot of this.slots) {
      slot.session?.close();
      slot.session = null;
      if (slot.retryTimer !== null) this.options.clock.clearTimeout(slot.retryTimer);
      slot.retryTimer = null;
    }
    this.slots = [];
  }

  private computeStatus(): ConnectionStatus {
    if (!this.online) return 'offline';
    if (this.slots.some((slot) => slot.failing)) return 'reconnecting';
    if (this.slots.every((slot) => slot.opened) && (this.slots.length > 0 || this.everConnected)) {
      return 'connected';
    }
    return this.everConnected ? 'reconnecting' : 'connecting';
  }

  private updateStatus(): void {
    if (this.closed) return;
    const status = this.computeStatus();
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.options.events.status(status);
  }
}
