// A fake browser with one site open in several tabs, each an EPushClient, all sharing one fake
// push server, clock, Web Locks, localStorage and BroadcastChannel.
import { EPushClient } from '../src/client.js';
import type {
  ConnectionStatus,
  ConnectOptions,
  PushNotification,
  ResetEvent,
} from '../src/types.js';
import {
  FakeBroadcastNetwork,
  FakeClock,
  FakeLocks,
  FakePushServer,
  FakeStorageArea,
  FakeWindow,
  newLogger,
  type ClockScope,
  type LockHolder,
} from './fakes.js';

export const URL_BASE = 'https://push.example.test';

export interface TabOptions {
  /** Web Locks available (default true); false uses the localStorage lease. */
  readonly locks?: boolean;
  /** BroadcastChannel available (default true); false uses storage events. */
  readonly broadcastChannel?: boolean;
  readonly localStorage?: boolean;
  readonly online?: boolean;
  /** The tab's sessionStorage (default: a new one); a reload keeps it. */
  readonly session?: FakeStorageArea;
  readonly extra?: Partial<ConnectOptions>;
}

export class Site {
  readonly clock = new FakeClock();
  readonly server = new FakePushServer(this.clock);
  readonly network = new FakeBroadcastNetwork();
  readonly storage = new FakeStorageArea();
  readonly locks = new FakeLocks();
  readonly tabs: Tab[] = [];
  online = true;
  private nextTab = 1;

  openTab(options: TabOptions = {}): Tab {
    const tab = new Tab(this, `tab${this.nextTab++}`, options);
    this.tabs.push(tab);
    return tab;
  }

  /** The user reloads `tab`: `pagehide`, the page is gone, a new page loads in the same tab. */
  reloadTab(tab: Tab): Tab {
    tab.closeTab();
    return this.openTab({ ...tab.options, session: tab.session });
  }

  leaders(): Tab[] {
    return this.tabs.filter((tab) => tab.alive && tab.client.isLeader);
  }

  leader(): Tab {
    const [leader, ...others] = this.leaders();
    if (!leader || others.length > 0) {
      throw new Error(`expected one leader, found ${this.leaders().length}`);
    }
    return leader;
  }

  /** Sets navigator.onLine and fires the event in every live tab. */
  setOnline(online: boolean): void {
    this.online = online;
    for (const tab of this.tabs)
      if (tab.alive) tab.window.dispatch({ type: online ? 'online' : 'offline' });
  }

  async advance(ms: number): Promise<void> {
    await this.clock.advance(ms);
  }
}

export class Tab {
  readonly client: EPushClient;
  readonly window = new FakeWindow();
  readonly received: PushNotification[] = [];
  readonly statuses: ConnectionStatus[] = [];
  readonly resets: ResetEvent[] = [];
  readonly expired: string[][] = [];
  readonly logger = newLogger();
  readonly session: FakeStorageArea;
  alive = true;
  private readonly scope: ClockScope;
  private readonly lockHolder: LockHolder;
  private readonly killChannels: () => void;

  constructor(
    private readonly site: Site,
    readonly name: string,
    readonly options: TabOptions,
  ) {
    this.session = options.session ?? new FakeStorageArea();
    this.scope = site.clock.scope();
    this.lockHolder = site.locks.holder();
    const channels = site.network.forTab();
    this.killChannels = channels.kill;
    this.client = new EPushClient({
      url: URL_BASE,
      fetch: site.server.fetchFor(name),
      BroadcastChannel: options.broadcastChannel === false ? null : channels.ctor,
      locks: options.locks === false ? null : this.lockHolder,
      localStorage: options.localStorage === false ? null : site.storage.forWindow(this.window),
      sessionStorage: this.session.forWindow(this.window),
      window: this.window,
      onLine: () => site.online,
      now: this.scope.now,
      setTimeout: this.scope.setTimeout,
      clearTimeout: this.scope.clearTimeout,
      random: () => 0.5,
      logger: this.logger,
      ...options.extra,
    });
    this.client.on('status', (status) => this.statuses.push(status));
    this.client.on('reset', (event) => this.resets.push(event));
    this.client.on('expired', (ids) => this.expired.push([...ids]));
  }

  /** Listens on `pushId`, recording what arrives; returns stop. */
  listen(pushId: string): () => void {
    return this.client.listen(pushId, (notification) => this.received.push(notification));
  }

  /** Ids received for `pushId` (all, duplicates included). */
  idsFor(pushId: string): string[] {
    return this.received.filter((n) => n.pushId === pushId).map((n) => n.id);
  }

  /** A crash: no timer, message, lock or request of this tab survives, and it says nothing. */
  kill(): void {
    this.alive = false;
    this.scope.kill();
    this.killChannels();
    this.window.dead = true;
    this.lockHolder.kill();
    this.site.server.dropClient(this.name);
  }

  /** A hidden tab's timers throttled to nothing; it still gets messages and events. */
  freezeTimers(): void {
    this.scope.kill();
  }

  /** The user closes the tab: `pagehide`, then the page is gone. */
  closeTab(): void {
    this.window.dispatch({ type: 'pagehide', persisted: false });
    this.kill();
  }
}
