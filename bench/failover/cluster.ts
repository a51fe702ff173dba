/**
 * What the failover bench needs from a cluster under test: k nodes on loopback ports, a listener
 * protocol of bench/peers, a way to publish one numbered notification, the servers' own count of held
 * listeners, and a way to stop one node (SIGKILL, or the server's graceful stop).
 */
import type { ListenerProtocol } from '../peers/types.js';

export type StopKind = 'kill' | 'graceful';

export interface PublishRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
}

export interface Cluster {
  /** `epush` or `nchan`. */
  readonly target: string;
  /** Versions and settings for the report. */
  readonly description: string;
  readonly ports: readonly number[];
  /** The bench's listener protocol the pool holds every listener with (long-poll). */
  readonly protocol: ListenerProtocol;
  /** The channel (nchan) every listener listens on; epush listens by push ID. */
  readonly channel: string;
  /** Sets up `n` listeners' identities (epush: push IDs in one group); returns their keys. */
  prepareListeners(n: number): Promise<string[]>;
  /** The request that publishes notification `seq` to every listener. */
  publishRequest(seq: number): PublishRequest;
  /** A 2xx answer to a publish: the notification's id (or '' when the target has none); null otherwise. */
  acceptedId(status: number, body: string): string | null;
  /** Listeners each node says it holds, summed (null when a node does not answer). */
  heldListeners(): Promise<number | null>;
  /** The signal name(s) a stop of this kind sends, for the report. */
  stopSignal(kind: StopKind): string;
  /** Signals node `index`; resolves once the signal(s) are sent (not when it exited). */
  stopNode(index: number, kind: StopKind): void;
  /** Resolves when node `index` has exited, or false after `ms`. */
  waitExit(index: number, ms: number): Promise<boolean>;
  /** Stops every process this cluster started, by pid. */
  shutdown(): Promise<void>;
  /** Log files written by the nodes. */
  readonly logs: readonly string[];
}

/** `true` once `pid` no longer exists (or is a zombie). */
export function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  return false;
}

export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** GET over a fresh connection (fetch: /metrics is chunked, which the raw client does not read). */
export async function getText(
  port: number,
  path: string,
  timeoutMs = 5000,
): Promise<string | null> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    return response.ok ? await response.text() : null;
  } catch {
    return null;
  }
}
