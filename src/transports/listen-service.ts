import type { Cursor, CursorPosition } from '../core/cursor.js';
import type { PushId } from '../core/push-id.js';
import type { ConnectionCounter, ListenerConnection } from './listener-connection.js';

/**
 * What a transport needs from the node to serve listeners: the seam between the transports and
 * the node that implements it (EpushNode). The HTTP layer's `PushService` extends it with the
 * application API; a transport sees no more than this.
 */
export interface ListenService {
  /** Open listener connections, counted by the transports. */
  readonly connections: ConnectionCounter;
  /**
   * Serves one listen on `connection`: answers at once (backlog, reset, expired push IDs) or
   * holds it until an event reaches one of `pushIds` or the hold times out. `from` null: from
   * now. Rejects with an EpushError when the listen cannot be served (e.g. `not_ready`).
   */
  listen(
    pushIds: readonly PushId[],
    from: CursorPosition | null,
    connection: ListenerConnection,
  ): Promise<void>;
  /** Null when ready to serve listeners, else the reason. */
  notReadyReason(): string | null;
  /** For answers that need a cursor before any read (a draining node, "from now" pinned). */
  headCursor(): Promise<Cursor>;
}
