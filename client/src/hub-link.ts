import {
  HUB_PROTOCOL,
  parseHubMessage,
  type HubHello,
  type HubState,
  type HubToPage,
  type PageToHub,
} from './hub-messages.js';
import type {
  Clock,
  ConnectionStatus,
  Logger,
  PushNotification,
  ResetEvent,
  TimerHandle,
} from './types.js';

/** The page's end of an open hub frame. */
export interface HubFrame {
  /**
   * Posts to the frame, targeted at the push server's origin only; what is posted before the
   * frame's page has loaded waits for it (the hub listens from its first script on).
   */
  post(message: PageToHub): void;
  /** Removes the frame (and stops hearing it). */
  close(): void;
}

/**
 * Opens the hub frame at `url` and calls `onMessage` with the data of every message that comes
 * from THAT frame and the push server's origin, `onLoad` when the frame's document loaded (or
 * failed to: a frame the hub's `frame-ancestors` blocks loads an error page), and `onBlocked`
 * when the page's own Content-Security-Policy refused the frame; null when this page cannot
 * embed frames.
 */
export type HubFrameOpener = (
  url: string,
  onMessage: (data: unknown) => void,
  onLoad: () => void,
  onBlocked?: () => void,
) => HubFrame | null;

/**
 * A hub whose frame has loaded answers `hello` at once (its script runs before `load`); this
 * long without an answer after `load` means the hub refused this origin in silence (not in
 * `--cors-origins`) or its `frame-ancestors` blocked the frame. Generous: the answer crosses
 * processes, and 8 tabs opening together on a busy 2-core machine took more than 0.5 s, so a
 * tab gave the hub up and held a connection of its own.
 */
export const HUB_LOADED_GRACE_MS = 3000;

/** What the link needs from the page's client. */
export interface HubLinkHost {
  ownPushIds(): string[];
  ownTokens(): Readonly<Record<string, string>> | undefined;
  /** Notifications for the page's views, with the shared cursor after them. */
  deliver(notifications: readonly PushNotification[], cursor: string | null): void;
  statusChanged(status: ConnectionStatus): void;
  reset(reason: ResetEvent['reason']): void;
  expire(pushIds: readonly string[]): void;
  forbid(refused: Readonly<Record<string, string>>, message: string): void;
  /** The hub did not answer in time or refused: the page shares per origin instead. */
  failed(reason: string): void;
}

export interface HubLinkOptions {
  readonly url: string;
  readonly hello: HubHello;
  readonly open: HubFrameOpener;
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

/**
 * The page's side of site sharing (`sharing.mode` `"site"`): a hidden frame of the push
 * server's origin (the hub) holds this page's place among the site's tabs, so pages of every
 * origin of the site share the one connection the hub frames coordinate. The page says `hello`
 * once (it waits for the frame to load), then sends its push IDs; the hub sends back only their
 * notifications and the shared status. Without an answer to `hello` within `timeoutMs`, or on
 * `refused`, `host.failed` is called once.
 */
export class HubLink {
  private frame: HubFrame | null = null;
  private state: HubState | null = null;
  private deadline: TimerHandle | null = null;
  private grace: TimerHandle | null = null;
  private registrationScheduled = false;
  private closed = false;

  constructor(
    private readonly options: HubLinkOptions,
    private readonly host: HubLinkHost,
  ) {
    const { clock } = options;
    this.deadline = clock.setTimeout(() => {
      this.deadline = null;
      this.fail(`the hub did not answer within ${options.timeoutMs} ms`);
    }, options.timeoutMs);
    try {
      this.frame = options.open(
        options.url,
        (data) => {
          this.onMessage(data);
        },
        () => {
          this.onLoad();
        },
        () => {
          this.fail("this page's Content-Security-Policy does not allow the hub frame");
        },
      );
    } catch (error) {
      options.logger.warn('epush: could not open the hub frame', error);
    }
    if (!this.frame) {
      queueMicrotask(() => {
        this.fail('this page cannot embed the hub frame');
      });
      return;
    }
    this.frame.post({ p: HUB_PROTOCOL, t: 'hello', ...options.hello });
  }

  /** Whether the hub answered: the page shares the site's connection. */
  get ready(): boolean {
    return this.state !== null;
  }

  /** What the hub last said about the shared connection (null until it answered). */
  get hubState(): HubState | null {
    return this.state;
  }

  /** The page's push IDs or tokens changed: sent to the hub once the burst is over. */
  pushIdsChanged(): void {
    if (this.registrationScheduled || !this.ready) return;
    this.registrationScheduled = true;
    queueMicrotask(() => {
      this.registrationScheduled = false;
      this.register();
    });
  }

  /** Says `bye` (the hub leaves the site's tabs) and removes the frame. */
  close(): void {
    if (this.closed) return;
    if (this.ready) this.frame?.post({ p: HUB_PROTOCOL, t: 'bye' });
    this.stop();
  }

  private stop(): void {
    this.closed = true;
    this.clearTimers();
    this.frame?.close();
    this.frame = null;
  }

  private onLoad(): void {
    if (this.closed || this.ready || this.grace !== null) return;
    this.grace = this.options.clock.setTimeout(() => {
      this.grace = null;
      this.fail('the hub frame loaded but did not answer (blocked, or this origin is not allowed)');
    }, HUB_LOADED_GRACE_MS);
  }

  private fail(reason: string): void {
    if (this.closed || this.ready) return;
    this.stop();
    this.host.failed(reason);
  }

  private register(): void {
    if (this.closed || !this.frame) return;
    const tokens = this.host.ownTokens();
    this.frame.post({
      p: HUB_PROTOCOL,
      t: 'register',
      pushIds: this.host.ownPushIds(),
      ...(tokens === undefined ? {} : { tokens }),
    });
  }

  private onMessage(data: unknown): void {
    if (this.closed) return;
    const message = parseHubMessage(data);
    if (!message) return;
    if (!this.ready) {
      if (message.t === 'refused') this.fail(`the hub refused: ${message.reason}`);
      else if (message.t === 'ready') this.onReady(message.state);
      return; // nothing else is expected before the hub is ready
    }
    this.onHubMessage(message);
  }

  private onReady(state: HubState): void {
    this.clearTimers();
    this.state = state;
    this.register();
    this.host.statusChanged(state.status);
  }

  private onHubMessage(message: HubToPage): void {
    switch (message.t) {
      case 'ready':
      case 'state':
        this.state = message.state;
        this.host.statusChanged(message.state.status);
        return;
      case 'deliver':
        this.host.deliver(message.notifications, message.cursor ?? null);
        return;
      case 'reset':
        this.host.reset(message.reason);
        return;
      case 'expired':
        this.host.expire(message.pushIds);
        return;
      case 'forbidden':
        this.host.forbid(message.refused, message.message);
        return;
      case 'refused':
        return; // only meaningful before `ready`
    }
  }

  private clearTimers(): void {
    const { clock } = this.options;
    if (this.deadline !== null) clock.clearTimeout(this.deadline);
    if (this.grace !== null) clock.clearTimeout(this.grace);
    this.deadline = null;
    this.grace = null;
  }
}

/** Where the DOM has what a hub frame needs; the structural part the opener uses. */
interface FrameDocument {
  createElement(tag: 'iframe'): HTMLIFrameElement;
  readonly body: HTMLElement | null;
  readonly documentElement: HTMLElement;
  addEventListener(
    type: 'securitypolicyviolation',
    listener: (event: SecurityPolicyViolationEvent) => void,
  ): void;
  removeEventListener(
    type: 'securitypolicyviolation',
    listener: (event: SecurityPolicyViolationEvent) => void,
  ): void;
}

/** Directives under which a page's CSP refuses a frame. */
const FRAME_DIRECTIVES = new Set(['frame-src', 'child-src', 'default-src']);

function originOf(url: string): string | null {
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

interface MessageWindow {
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}

/**
 * The real opener: a hidden, inert `<iframe>` of the hub page. Messages are accepted only
 * from that frame's window and the push server's origin, and posted to that origin only.
 */
export function iframeHubOpener(document: FrameDocument, window: MessageWindow): HubFrameOpener {
  return (url, onMessage, onLoad, onBlocked) => {
    const origin = new URL(url).origin;
    const iframe = document.createElement('iframe');
    iframe.src = url;
    iframe.title = 'epush hub';
    iframe.tabIndex = -1;
    iframe.setAttribute('aria-hidden', 'true');
    iframe.style.display = 'none';
    const listener = (event: MessageEvent): void => {
      if (event.origin !== origin || event.source === null) return;
      if (event.source !== iframe.contentWindow) return;
      onMessage(event.data);
    };
    // Posting to the frame's initial about:blank document (the page's origin) would only make
    // the browser log a target-origin mismatch: messages wait for the hub page's `load`.
    let queued: PageToHub[] | null = [];
    iframe.addEventListener('load', () => {
      const waiting = queued ?? [];
      queued = null;
      for (const message of waiting) iframe.contentWindow?.postMessage(message, origin);
      onLoad();
    });
    // Refused by the page's own CSP: known at once, no need to wait out the grace after `load`.
    const violation = (event: SecurityPolicyViolationEvent): void => {
      if (!FRAME_DIRECTIVES.has(event.effectiveDirective)) return;
      if (originOf(event.blockedURI) === origin) onBlocked?.();
    };
    document.addEventListener('securitypolicyviolation', violation);
    window.addEventListener('message', listener);
    (document.body ?? document.documentElement).appendChild(iframe);
    return {
      post(message) {
        if (queued) queued.push(message);
        else iframe.contentWindow?.postMessage(message, origin);
      },
      close() {
        document.removeEventListener('securitypolicyviolation', violation);
        window.removeEventListener('message', listener);
        iframe.remove();
      },
    };
  };
}
