import {
  HUB_PROTOCOL,
  parsePageMessage,
  type HubHello,
  type HubState,
  type HubToPage,
} from './hub-messages.js';
import type {
  Clock,
  ConnectOptions,
  ConnectionStatus,
  EPushEvents,
  ListenOptions,
  Logger,
  PushNotification,
} from './types.js';

/** The part of the hub's own client (an `EPushClient` sharing per origin) the hub uses. */
export interface HubClient {
  readonly status: ConnectionStatus;
  readonly isLeader: boolean;
  readonly sharing: { readonly leadership: string; readonly channel: string };
  listen(
    pushId: string,
    callback: (notification: PushNotification) => void,
    options?: ListenOptions,
  ): () => void;
  on<K extends keyof EPushEvents>(event: K, callback: (value: EPushEvents[K]) => void): () => void;
  shutdown(): void;
  /** After each batch handed to the views, with the shared cursor after it. */
  onDelivered(watcher: (cursor: string | null) => void): () => void;
}

/** A `message` event as the hub reads it. */
export interface HubMessageEvent {
  readonly data: unknown;
  readonly origin: string;
  readonly source: unknown;
}

/** The window that embeds the hub (`window.parent`). */
export interface HubParent {
  postMessage(message: HubToPage, targetOrigin: string): void;
}

export interface HubOptions {
  /** Origins whose pages may use the hub (`--cors-origins`); `'*'` lets any page. */
  readonly allowedOrigins: '*' | readonly string[];
  /** The embedding page's window: the only one the hub answers, never anyone else. */
  readonly parent: HubParent;
  /** Subscribes to the hub window's `message` events. */
  listenForMessages(listener: (event: HubMessageEvent) => void): void;
  /** Creates the hub's own client, sharing per origin on the push server's origin. */
  createClient(hello: HubHello): HubClient;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The options of the hub's own client for a page's `hello`: it shares per origin (the push
 * server's), and keeps no ledger of its own, since what it posts may never reach an unloading
 * page: the page keeps its ledger and names its cursor in `hello` after a reload.
 */
export function hubClientOptions(hello: HubHello): Omit<ConnectOptions, 'url'> {
  const { since, ...options } = hello;
  return {
    ...options,
    sharing: 'origin',
    sessionStorage: null,
    ...(since === undefined ? {} : { resumeCursor: since }),
  };
}

/** How often the hub looks whether its leadership changed (for `push.isLeader` in the page). */
const STATE_CHECK_MS = 250;

/**
 * The hub frame's logic (`/epush-hub.html`): it serves the ONE page that embeds it. It answers
 * only messages whose source is that page's window and whose origin is allowed, and keeps to
 * the origin that said `hello` first. Its own client joins the site's tabs on the push server's
 * origin; the page's push IDs become that client's views, so the hub hands the page exactly
 * the notifications, `expired` and `forbidden` of its own push IDs, posted to the page's origin
 * only. A page cannot name another page's frame, and learns nothing of other pages through it.
 */
export class Hub {
  private readonly allowed: '*' | ReadonlySet<string>;
  private pageOrigin: string | null = null;
  private client: HubClient | null = null;
  /** The page's push IDs: the token each was listened with ('' for none) and its `stop`. */
  private readonly views = new Map<string, { token: string; stop: () => void }>();
  private lastState = '';
  /** The page's notifications of the batch being handed over, posted with its cursor. */
  private batch: PushNotification[] = [];
  private postedCursor: string | null = null;
  private stateTimer: ReturnType<Clock['setTimeout']> | null = null;
  private warned = false;
  private closed = false;

  constructor(private readonly options: HubOptions) {
    const { allowedOrigins } = options;
    this.allowed = allowedOrigins === '*' ? '*' : new Set(allowedOrigins);
    options.listenForMessages((event) => {
      this.onMessage(event);
    });
  }

  /** The origin of the page this hub serves, once it said `hello` (diagnostics and tests). */
  get servedOrigin(): string | null {
    return this.pageOrigin;
  }

  private onMessage(event: HubMessageEvent): void {
    if (this.closed || event.source !== this.options.parent) return;
    if (!this.isAllowed(event.origin)) {
      if (!this.warned) {
        this.warned = true;
        this.options.logger.warn(`epush hub: ignoring ${event.origin}, not an allowed origin`);
      }
      return;
    }
    if (this.pageOrigin !== null && event.origin !== this.pageOrigin) return;
    const message = parsePageMessage(event.data);
    if (!message) return;
    switch (message.t) {
      case 'hello': {
        this.pageOrigin = event.origin;
        this.onHello(message);
        return;
      }
      case 'register':
        if (this.client) this.register(this.client, message.pushIds, message.tokens ?? {});
        return;
      case 'bye':
        this.close();
        return;
    }
  }

  private isAllowed(origin: string): boolean {
    return this.allowed === '*' || this.allowed.has(origin);
  }

  private onHello(hello: HubHello): void {
    if (this.client) {
      this.post({ p: HUB_PROTOCOL, t: 'ready', state: this.state(this.client) }); // a repeat
      return;
    }
    const client = this.options.createClient(hello);
    if (client.sharing.leadership === 'solo') {
      // Neither Web Locks nor storage here (third-party storage blocked): every frame would lead
      // alone, so the page does better sharing per origin.
      client.shutdown();
      this.post({ p: HUB_PROTOCOL, t: 'refused', reason: 'the hub frame cannot share here' });
      this.closed = true;
      return;
    }
    this.client = client;
    client.onDelivered((cursor) => {
      this.postDeliveries(cursor);
    });
    client.on('status', () => {
      this.postStateIfChanged();
    });
    client.on('reset', ({ reason }) => {
      this.post({ p: HUB_PROTOCOL, t: 'reset', reason });
    });
    client.on('expired', (pushIds) => {
      for (const id of pushIds) this.views.delete(id);
      this.post({ p: HUB_PROTOCOL, t: 'expired', pushIds });
    });
    client.on('forbidden', ({ pushIds, message }) => {
      const refused: Record<string, string> = {};
      for (const id of pushIds) refused[id] = this.views.get(id)?.token ?? '';
      this.post({ p: HUB_PROTOCOL, t: 'forbidden', refused, message });
    });
    const state = this.state(client);
    this.lastState = JSON.stringify(state);
    this.post({ p: HUB_PROTOCOL, t: 'ready', state });
    this.scheduleStateCheck();
  }

  /** Makes the client's views exactly the page's push IDs, each with its current token. */
  private register(
    client: HubClient,
    pushIds: readonly string[],
    tokens: Readonly<Record<string, string>>,
  ): void {
    const wanted = new Set(pushIds);
    for (const [id, view] of this.views) {
      if (wanted.has(id)) continue;
      this.views.delete(id);
      view.stop();
    }
    for (const id of wanted) {
      const token = Object.hasOwn(tokens, id) ? (tokens[id] ?? '') : '';
      const current = this.views.get(id);
      if (current?.token === token) continue;
      try {
        // A new view before the old one stops: the push ID stays listened on meanwhile.
        const stop = client.listen(
          id,
          (notification) => {
            this.batch.push(notification);
          },
          token === '' ? {} : { listenToken: token },
        );
        this.views.set(id, { token, stop });
        current?.stop();
      } catch (error) {
        // Not a push ID, or not a token: that page's bug, never the hub's failure.
        this.options.logger.warn('epush hub: a page registered something invalid', error);
      }
    }
  }

  /** The batch the client just handed over, and the cursor after it (the page's ledger). */
  private postDeliveries(cursor: string | null): void {
    if (this.batch.length === 0 && cursor === this.postedCursor) return;
    const notifications = this.batch;
    this.batch = [];
    this.postedCursor = cursor;
    this.post({ p: HUB_PROTOCOL, t: 'deliver', notifications, cursor });
  }

  private state(client: HubClient): HubState {
    return {
      status: client.status,
      isLeader: client.isLeader,
      leadership: client.sharing.leadership,
      channel: client.sharing.channel,
    };
  }

  private postStateIfChanged(): void {
    if (!this.client) return;
    const state = this.state(this.client);
    const key = JSON.stringify(state);
    if (key === this.lastState) return;
    this.lastState = key;
    this.post({ p: HUB_PROTOCOL, t: 'state', state });
  }

  private scheduleStateCheck(): void {
    this.stateTimer = this.options.clock.setTimeout(() => {
      this.stateTimer = null;
      if (this.closed) return;
      this.postStateIfChanged();
      this.scheduleStateCheck();
    }, STATE_CHECK_MS);
  }

  private post(message: HubToPage): void {
    if (this.pageOrigin === null) return;
    try {
      this.options.parent.postMessage(message, this.pageOrigin);
    } catch (error) {
      this.options.logger.warn('epush hub: could not post to the page', error);
    }
  }

  /** The page said `bye`: leave the site's tabs now (hands leadership over). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.stateTimer !== null) this.options.clock.clearTimeout(this.stateTimer);
    this.stateTimer = null;
    this.views.clear();
    this.client?.shutdown();
    this.client = null;
  }
}
