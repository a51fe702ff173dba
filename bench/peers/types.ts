/**
 * The contracts of bench/peers: a server stack (epush or a peer) that a scenario starts, measures
 * by its pids and publishes to, and a listener protocol that holds one listener on one raw
 * keep-alive socket. Both are independent of any scenario's loop, so that the side-by-side
 * fan-out and the publish-throughput scenario share them.
 */

export interface StackOptions {
  /** Private scratch folder for configs, logs, pid and ipc files (under .bench-out/). */
  readonly dir: string;
  /** CPU the whole stack is pinned to (null: not pinned). */
  readonly cpu: number | null;
  /** The group / channel every listener listens on. */
  readonly channel: string;
  /** Listeners the stack must hold (fd limits, connection caps). */
  readonly maxConnections: number;
  /** Progress lines for the terminal. */
  readonly log: (message: string) => void;
  /** epush only: the built CLI (`dist/src/cli/main.js`) and a label for its code (commit). */
  readonly epushCli?: string;
  readonly epushVersion?: string;
}

export interface PublishResult {
  readonly status: number;
  readonly ok: boolean;
  readonly body: string;
}

/** One keep-alive publishing connection of its own (a throughput test opens several). */
export interface StackPublisher {
  publish(payload: string): Promise<PublishResult>;
  close(): void;
}

export interface PeerStack {
  /** Peer name as in the reports, e.g. `nchan`. */
  readonly name: string;
  /** Package versions, e.g. `nginx 1.22.1-9+deb12u11, libnginx-mod-nchan 1:1.3.6+dfsg-2`. */
  readonly version: string;
  /** Where listeners connect (127.0.0.1). */
  readonly port: number;
  /** What a reader needs to reproduce the configuration (one line). */
  readonly config: string;
  /** Every process of the stack, for CPU and RSS (read again: children may come and go). */
  pids(): number[];
  /**
   * Per-listener identities before the listeners connect (epush: push IDs minted and put in the
   * group; the peers: the channel name for every listener).
   */
  prepareListeners(n: number): Promise<string[]>;
  /** One notification to the channel; `payload` is a short ASCII string. */
  publish(payload: string): Promise<PublishResult>;
  /** Another publishing connection, for concurrent publishers. */
  openPublisher(): StackPublisher;
  /** Stops every process of the stack by pid (TERM, then KILL), and removes nothing but its own files. */
  stop(): Promise<void>;
}

/** Knobs a peer needs from a load generator (pushpin cannot take a 10k connect burst on one core). */
export interface LoadHints {
  /** Connects per second (0: only bounded by connects in flight). */
  readonly connectRatePerSec: number;
  /** A refused poll (e.g. 502) is retried after this back-off, doubled per attempt up to the max. */
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Some listeners may stay unarmed (the peer is known to collapse): go on with those armed. */
  readonly tolerateUnarmed: boolean;
}

export const DEFAULT_HINTS: LoadHints = {
  connectRatePerSec: 0,
  retryBaseMs: 500,
  retryMaxMs: 4000,
  tolerateUnarmed: false,
};

/** What a listener protocol needs to know about its connection. */
export interface ListenerContext {
  readonly hostHeader: string;
  readonly channel: string;
  /** From PeerStack.prepareListeners. */
  readonly identity: string;
  /** Back-off before retrying after the `attempt`-th refusal in a row (1, 2, …). */
  readonly backoffMs: (attempt: number) => number;
  /** A long-poll re-polls this long after an answer that delivered something (0: at once). */
  readonly repollDelayMs: number;
  /**
   * The listener's resume token (a cursor, an etag…), kept by the pool across reconnects: a
   * protocol reads it when it opens and writes it after every answer, as a browser would.
   */
  readonly resume: Map<string, string>;
}

/** What a listener reports; the generator counts, times and checks. */
export interface ListenerEvents {
  /** A poll is outstanding (long-poll), or the stream is registered (SSE, WebSocket). */
  readonly armed: () => void;
  /** A long-poll answer arrived: not armed until the re-poll is written. */
  readonly answered: () => void;
  /**
   * The payloads one answer delivered (possibly none: hold expiry, handshake steps), and their
   * notification ids, index-aligned, when the protocol has them (epush).
   */
  readonly delivered: (payloads: readonly string[], ids?: readonly (string | null)[]) => void;
  /**
   * The server sent the listener away: an epush `reconnect` answer (kind `reconnect`), or a
   * refusal the protocol would otherwise retry here (kind `status:<code>`, e.g. nchan's 410 at a
   * graceful stop). True: the pool moves the listener now (closes this connection and opens one
   * to its next target) and the protocol stops on this socket. False: carry on as before
   * (re-poll, or retry after the back-off); a pool without moves always answers false.
   */
  readonly sentAway: (kind: string, detail: string) => boolean;
  /** A refusal the protocol retries by itself after a back-off (e.g. pushpin's 502). */
  readonly retried: (kind: string, detail: string) => void;
  /** A failure the listener cannot recover from on this socket: the generator closes it. */
  readonly failed: (kind: string, detail: string) => void;
  /** Something worth counting that is not an error (an epush `reconnect` answer, a reset…). */
  readonly noted: (name: string) => void;
}

/** One listener's wire protocol on one connection. */
export interface ListenerWire {
  /** The socket connected: send the first request (or handshake). */
  start(): void;
  feed(chunk: Buffer): void;
  /** Stop re-polling (the run is over). */
  stop(): void;
}

export interface ListenerProtocol {
  readonly name: string;
  /** The resume token it carries from one answer to the next poll, for the docs. */
  readonly resumeToken: string;
  /** Stays registered across deliveries (no re-poll). */
  readonly streaming: boolean;
  open(
    context: ListenerContext,
    events: ListenerEvents,
    write: (data: string | Buffer) => void,
  ): ListenerWire;
}
