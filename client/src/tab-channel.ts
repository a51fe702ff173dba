import { parseTabMessage, type TabMessage } from './tab-messages.js';
import type {
  BroadcastChannelConstructor,
  BroadcastChannelLike,
  Logger,
  StorageLike,
  WindowEventLike,
  WindowLike,
} from './types.js';

/**
 * The message bus between the tabs (and applications) of one site that share a connection.
 * Like BroadcastChannel, a tab does not hear its own messages: in-tab delivery is direct.
 * Delivery is best effort and in order per sender; every protocol message is either repeated
 * (heartbeats) or covered by the cursor the tabs heard, which a new leader resumes from, so a lost
 * one costs a re-read (deduped per tab), never a notification.
 */
export interface TabChannel {
  /** `broadcast-channel`, `storage` (fallback) or `none` (this tab is on its own). */
  readonly kind: 'broadcast-channel' | 'storage' | 'none';
  post(message: TabMessage): void;
  close(): void;
}

export interface TabChannelEnvironment {
  readonly BroadcastChannel: BroadcastChannelConstructor | null;
  readonly localStorage: StorageLike | null;
  readonly window: WindowLike | null;
  readonly logger: Logger;
}

/** Opens the best channel the browser offers: BroadcastChannel, else `storage` events. */
export function openTabChannel(
  name: string,
  env: TabChannelEnvironment,
  onMessage: (message: TabMessage) => void,
): TabChannel {
  if (env.BroadcastChannel) {
    try {
      return new BroadcastTabChannel(new env.BroadcastChannel(name), onMessage, env.logger);
    } catch (error) {
      env.logger.warn('epush: BroadcastChannel unavailable, falling back to storage events', error);
    }
  }
  if (env.localStorage && env.window) {
    return new StorageTabChannel(
      `${name}:msg`,
      env.localStorage,
      env.window,
      onMessage,
      env.logger,
    );
  }
  return { kind: 'none', post: () => undefined, close: () => undefined };
}

class BroadcastTabChannel implements TabChannel {
  readonly kind = 'broadcast-channel' as const;
  private closed = false;

  constructor(
    private readonly channel: BroadcastChannelLike,
    onMessage: (message: TabMessage) => void,
    private readonly logger: Logger,
  ) {
    channel.addEventListener('message', (event) => {
      if (this.closed) return;
      const message = parseTabMessage(event.data);
      if (message) onMessage(message);
    });
  }

  post(message: TabMessage): void {
    if (this.closed) return;
    try {
      this.channel.postMessage(message);
    } catch (error) {
      this.logger.error('epush: could not post to the tab channel', error);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.channel.close();
  }
}

/**
 * Fallback where BroadcastChannel is missing: a write to a localStorage key fires a `storage`
 * event in every other tab of the origin. Each message is written and removed at once, so the
 * key stays empty; a nonce makes identical consecutive messages distinct writes.
 */
class StorageTabChannel implements TabChannel {
  readonly kind = 'storage' as const;
  private closed = false;
  private sequence = 0;
  private readonly nonce = Math.random().toString(36).slice(2);
  private readonly listener: (event: WindowEventLike) => void;

  constructor(
    private readonly key: string,
    private readonly storage: StorageLike,
    private readonly window: WindowLike,
    onMessage: (message: TabMessage) => void,
    private readonly logger: Logger,
  ) {
    this.listener = (event) => {
      if (this.closed || event.key !== this.key || !event.newValue) return;
      let envelope: unknown;
      try {
        envelope = JSON.parse(event.newValue);
      } catch {
        return;
      }
      if (typeof envelope !== 'object' || envelope === null || !('m' in envelope)) return;
      const message = parseTabMessage(envelope.m);
      if (message) onMessage(message);
    };
    window.addEventListener('storage', this.listener);
  }

  post(message: TabMessage): void {
    if (this.closed) return;
    this.sequence += 1;
    try {
      this.storage.setItem(
        this.key,
        JSON.stringify({ n: `${this.nonce}.${this.sequence}`, m: message }),
      );
      this.storage.removeItem(this.key);
    } catch (error) {
      this.logger.error('epush: could not post through localStorage', error);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.window.removeEventListener('storage', this.listener);
  }
}
