import { randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { decodeCursor, encodeCursor, type Cursor, type CursorPosition } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import { MAX_PUSH_IDS_PER_LISTEN } from '../../core/limits.js';
import { isPushId, type PushId } from '../../core/push-id.js';
import type { ListenerConnection } from '../../transports/listener-connection.js';
import type { PushService } from '../push-service.js';
import {
  countListen,
  decodeState,
  isWindowId,
  nextSequence,
  STATE_COOKIE,
  type IcepushBrowserState,
} from './icepush-browser-state.js';
import { BROWSER_ID_NAME, type IcepushRequest } from './icepush-request.js';
import { IcepushReply } from './icepush-reply.js';
import { NOOP_XML, backOffXml, configurationXml, notifiedXml } from './icepush-xml.js';
import type { IcepushNotified } from './icepush-xml.js';

export interface IcepushListenOptions {
  /** The server's heartbeat (`--icepush-heartbeat-seconds`) in ms; ICEpush's default is 15000. */
  readonly heartbeatMs: number;
  /** Back-off sent to a browser in a push storm; 0: its connection is closed instead. */
  readonly stormBackoffMs: number;
}

/** ICEpush's own default heartbeat: pages are told their configuration only when it differs. */
export const DEFAULT_HEARTBEAT_MS = 15_000;
/** The marker of the control notification a listen publishes to its browser's own push ID. */
const CONTROL_KEY = 'epush.icepush';
/** How many events a browser's first listen reads back (fewer when the log is shorter). */
const FIRST_LOOK_BACK = 1024;
/** Reads one listen may chain (each at most one answer's worth) before answering `noop`. */
const MAX_READS = 50;

interface ParsedAnswer {
  notifications: { pushId: string; payload: unknown }[];
  cursor: Cursor;
  expired: string[];
  reconnect?: boolean;
  reset?: boolean;
  replaced?: boolean;
}

/**
 * One `listen.icepush`. The browser ID is a push ID of its own, listened on with the page's push
 * IDs: every listen first publishes a control notification to it (a random token), so an older
 * listen of the same browser, held on any node, hears of the newer one and is closed as a
 * `duplicate`; on the node that holds both, the newer one displaces the older at once. The read
 * position comes from the browser's state cookie (see icepush-browser-state.ts), so any node can
 * answer any listen and a dead node's listen loses nothing.
 */
export class IcepushListen {
  private readonly reply: IcepushReply;
  private readonly state: IcepushBrowserState;
  private readonly token = randomBytes(12).toString('base64url');
  /** Whether this listen's own control notification has gone by: later ones are newer listens. */
  private ownSeen = false;
  private window = '';

  constructor(
    private readonly service: PushService,
    private readonly request: IcepushRequest,
    res: ServerResponse,
    private readonly options: IcepushListenOptions,
    /** The newest listen of each browser on this node (its token), shared by every listen. */
    private readonly newest: Map<PushId, string>,
  ) {
    this.state = decodeState(request.cookie(STATE_COOKIE));
    this.reply = new IcepushReply(res, this.state);
  }

  async run(): Promise<void> {
    const now = Date.now();
    const counted = countListen(this.state, now);
    this.reply.update({ tightLoops: counted.tightLoops, lastListenAt: now });
    if (counted.storm) {
      if (this.options.stormBackoffMs > 0) this.reply.xml(backOffXml(this.options.stormBackoffMs));
      else this.reply.close('push storm occurred');
      return;
    }
    if (
      this.request.has('ice.sendConfiguration') &&
      this.options.heartbeatMs !== DEFAULT_HEARTBEAT_MS
    ) {
      this.reply.xml(configurationXml(this.options.heartbeatMs));
      return;
    }
    const offered = this.request.cookie(BROWSER_ID_NAME) ?? this.request.value(BROWSER_ID_NAME);
    if (offered === null || !isPushId(offered)) {
      await this.newBrowser();
      return;
    }
    const browserId = offered;
    const pushIds = [...new Set(this.request.all('ice.pushid').filter(isPushId))].filter(
      (id) => id !== browserId,
    );
    if (pushIds.length >= MAX_PUSH_IDS_PER_LISTEN) {
      this.reply.serverError(
        `A listen carries at most ${MAX_PUSH_IDS_PER_LISTEN - 1} push IDs here (got ${pushIds.length}).`,
      );
      return;
    }
    const window = this.request.value('ice.push.window') ?? '';
    this.window = isWindowId(window) ? window : '';
    this.reply.update({
      sequence: nextSequence(this.request.integer('ice.push.sequence'), this.state.sequence),
      window: this.window,
    });
    try {
      await this.service.notifyPushId(
        browserId,
        JSON.stringify({ [CONTROL_KEY]: 'listen', token: this.token }),
      );
    } catch (error) {
      if (error instanceof EpushError && error.code === 'push_id_not_found') {
        // An expired browser ID, or one this cluster never minted (forged): a new one.
        await this.newBrowser();
        return;
      }
      this.reply.serverError(messageOf(error));
      return;
    }
    // A held listen.icepush is a long-poll connection (epush_connections, /api/cluster).
    this.service.connections.opened('long-poll');
    this.newest.set(browserId, this.token);
    try {
      await this.serve(browserId, pushIds);
    } catch (error) {
      this.reply.serverError(messageOf(error));
    } finally {
      this.service.connections.closed('long-poll');
      if (this.newest.get(browserId) === this.token) this.newest.delete(browserId);
    }
  }

  /** `<browser id="…"/>`: the client stores the new ID in its cookie and listens again at once. */
  private async newBrowser(): Promise<void> {
    try {
      const [browserId] = await this.service.createPushIds(1);
      if (browserId !== undefined) this.reply.newBrowser(browserId);
    } catch (error) {
      this.reply.serverError(messageOf(error));
    }
  }

  private async serve(browserId: PushId, pushIds: PushId[]): Promise<void> {
    const { state } = this;
    const windowChanged = state.window !== '' && this.window !== '' && state.window !== this.window;
    // The window holding the connection changed: the old one may have died before passing the
    // last notifications on to the others, so they are read again (with whatever came since).
    const resend = windowChanged && state.notifiedFrom !== '';
    const start = resend ? state.notifiedFrom : state.cursor;
    // No position yet (a new browser, or one that lost its cookies): its push IDs are new, so
    // what was sent to them lately is theirs: read back a little instead of "from now", which
    // would lose a notification sent between a page's render and its first listen.
    let lookBack = start === '' ? FIRST_LOOK_BACK : 0;
    let from = start === '' ? await this.lookBackFrom(lookBack) : decodeCursor(start);
    const heartbeat = this.options.heartbeatMs;
    const asked = this.request.integer('ice.push.heartbeat') ?? heartbeat;
    const holdMs = Math.min(Math.max(Math.min(asked, heartbeat), heartbeat / 3), 3 * heartbeat);
    const deadline = Date.now() + holdMs;
    let ids = pushIds;
    for (let read = 0; read < MAX_READS; read++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let answer: ParsedAnswer | null;
      try {
        answer = await this.listenOnce([browserId, ...ids], from, remaining);
      } catch (error) {
        this.reply.serverError(messageOf(error));
        return;
      }
      if (answer === null) return; // the browser went away
      if (answer.replaced === true) {
        if (this.newest.get(browserId) !== this.token) {
          this.reply.close('duplicate');
        } else {
          // Displaced by a listen of another browser on one of these push IDs (whoever knows a
          // push ID may listen on it): not this browser's duplicate, so it is not told to stop.
          this.reply.xml(NOOP_XML, 'response timeout');
        }
        return;
      }
      if (answer.expired.includes(browserId)) {
        await this.newBrowser();
        return;
      }
      const notified: IcepushNotified[] = [];
      for (const delivery of answer.notifications) {
        const control = controlToken(delivery, browserId);
        if (control === null) {
          notified.push({ pushId: delivery.pushId, payload: payloadText(delivery.payload) });
        } else if (control === this.token) {
          this.ownSeen = true;
        } else if (this.ownSeen) {
          // A newer listen of this browser, on this node or another: this one gives way.
          this.reply.close('duplicate');
          return;
        }
      }
      if (answer.expired.length > 0) ids = ids.filter((id) => !answer.expired.includes(id));
      if (answer.reset === true && lookBack > 0) {
        // Looked back past the log's start: look back less, down to "from now".
        lookBack = Math.floor(lookBack / 8);
        const head = decodeCursor(answer.cursor);
        if (lookBack < 16 || head === null) {
          this.ownSeen = true;
          from = head;
        } else {
          from = { epoch: head.epoch, seq: Math.max(0, head.seq - lookBack) };
        }
        continue;
      }
      if (answer.reset === true) {
        // The position is past retention (or of a lost log): what was missed cannot be known,
        // so every push ID is woken once; the page fetches its state again.
        this.ownSeen = true;
        for (const pushId of ids) notified.push({ pushId, payload: null });
      }
      if (notified.length > 0) {
        // A page that gets something new at every listen is busy, not in a storm, however fast
        // it listens again (the original closed such pages too); re-sends still count.
        if (!resend) this.reply.update({ tightLoops: 0 });
        this.reply.update({
          cursor: answer.cursor,
          notifiedFrom:
            from === null || answer.reset === true ? '' : encodeCursor(from.epoch, from.seq),
        });
        this.reply.xml(notifiedXml(notified));
        return;
      }
      this.reply.update({ cursor: answer.cursor });
      if (answer.reconnect === true) {
        // Draining or cut off from the backplane: the page listens again at once, elsewhere
        // (not counted as a push storm: it may take a few tries to reach another node).
        this.reply.update({ tightLoops: 0 });
        this.reply.xml(NOOP_XML, 'shutdown');
        return;
      }
      from = decodeCursor(answer.cursor);
    }
    this.reply.xml(NOOP_XML, 'response timeout');
  }

  /** `lookBack` events before the head (null: from now, when the head is not known). */
  private async lookBackFrom(lookBack: number): Promise<CursorPosition | null> {
    const head = decodeCursor(await this.service.headCursor());
    if (head === null) {
      this.ownSeen = true;
      return null;
    }
    return { epoch: head.epoch, seq: Math.max(0, head.seq - lookBack) };
  }

  /** One listen through the node; null when the browser went away first. */
  private async listenOnce(
    pushIds: readonly PushId[],
    from: CursorPosition | null,
    holdMs: number,
  ): Promise<ParsedAnswer | null> {
    const connection = new IcepushConnection(this.reply.res, holdMs);
    try {
      await this.service.listen(pushIds, from, connection);
    } catch (error) {
      connection.dispose();
      throw error;
    }
    const json = await connection.answer;
    return json === null ? null : (JSON.parse(json) as ParsedAnswer);
  }
}

/**
 * The dispatcher's view of one read of an ICEpush listen: a long-poll whose answer is handed
 * back to {@link IcepushListen} (which may listen again) instead of being written.
 */
class IcepushConnection implements ListenerConnection {
  readonly transport = 'long-poll' as const;
  readonly streaming = false;
  readonly answer: Promise<string | null>;
  private settle: (json: string | null) => void = () => undefined;
  private done = false;
  private closeCallback: (() => void) | null = null;
  private readonly onPeerGone = (): void => {
    if (this.done) return;
    this.done = true;
    this.settle(null);
    const callback = this.closeCallback;
    this.closeCallback = null;
    callback?.();
  };

  constructor(
    private readonly res: ServerResponse,
    readonly holdMs: number,
  ) {
    this.answer = new Promise((resolve) => {
      this.settle = resolve;
    });
    if (res.destroyed) this.onPeerGone();
    else res.once('close', this.onPeerGone);
  }

  get closed(): boolean {
    return this.done;
  }

  onClose(callback: () => void): void {
    this.closeCallback = callback;
  }

  send(answerJson: string): void {
    if (this.done) return;
    this.dispose();
    this.settle(answerJson);
  }

  /** Ends this read without an answer (the listen failed); the peer is no longer watched. */
  dispose(): void {
    this.done = true;
    this.closeCallback = null;
    this.res.off('close', this.onPeerGone);
  }
}

/** The token of a control notification to the browser's own push ID; null for anything else. */
function controlToken(
  delivery: { pushId: string; payload: unknown },
  browserId: PushId,
): string | null {
  if (delivery.pushId !== browserId) return null;
  const { payload } = delivery;
  if (typeof payload !== 'object' || payload === null) return null;
  const record = payload as Record<string, unknown>;
  return record[CONTROL_KEY] === 'listen' && typeof record.token === 'string' ? record.token : null;
}

/** ICEpush payloads are text: a JSON string is its value, anything else its JSON. */
function payloadText(payload: unknown): string | null {
  if (payload === null || payload === undefined) return null;
  return typeof payload === 'string' ? payload : JSON.stringify(payload);
}

function messageOf(error: unknown): string {
  return error instanceof EpushError ? error.message : 'The server failed to serve this listen.';
}
