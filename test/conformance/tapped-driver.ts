import type {
  BackplaneDriver,
  DriverLink,
  LogEntry,
  PresenceDriverMethods,
} from '../../src/backplane/driver.js';

/** The presence primitives, forwarded once, when the driver has them. */
function presenceOf(inner: BackplaneDriver): Partial<PresenceDriverMethods> {
  const { presenceRead, presenceWrite, presenceDue, presenceHeldBy, presenceHolders } = inner;
  if (!presenceRead || !presenceWrite || !presenceDue || !presenceHeldBy || !presenceHolders) {
    return {};
  }
  return {
    presenceRead: presenceRead.bind(inner),
    presenceWrite: presenceWrite.bind(inner),
    presenceDue: presenceDue.bind(inner),
    presenceHeldBy: presenceHeldBy.bind(inner),
    presenceHolders: presenceHolders.bind(inner),
  };
}

/**
 * A driver with a tap between it and the protocol above: the conformance suite uses it to lose
 * live-tail entries (a dropped pub/sub message, a dead subscription) and to take the link down
 * and up, and checks that the one protocol repairs both over every real driver.
 */
export class TappedDriver {
  /** Entries for which this returns true never reach the protocol. */
  drop: (entry: LogEntry) => boolean = () => false;
  private link: DriverLink | null = null;
  private down = false;

  constructor(private readonly inner: BackplaneDriver) {}

  /** The link goes down for the protocol (entries are lost meanwhile), or comes back. */
  setDown(down: boolean): void {
    this.down = down;
    this.link?.link(!down && this.inner.isUp());
  }

  connect(link: DriverLink): Promise<void> {
    this.link = link;
    return this.inner.connect({
      entry: (epoch, entry) => {
        if (!this.down && !this.drop(entry)) link.entry(epoch, entry);
      },
      probe: (token) => {
        if (!this.down) link.probe(token);
      },
      link: (up) => {
        link.link(up && !this.down);
      },
    });
  }

  isUp(): boolean {
    return this.inner.isUp() && !this.down;
  }

  /**
   * The driver the protocol sees. Optional capabilities stay optional: the protocol behaves
   * differently without them (NATS has no probe path of its own).
   */
  asDriver(): BackplaneDriver {
    const inner = this.inner;
    return {
      kind: inner.kind,
      vendor: inner.vendor,
      guarantees: inner.guarantees,
      connect: (link) => this.connect(link),
      isUp: () => this.isUp(),
      // Everything else goes straight to the driver under the tap.
      close: () => inner.close(),
      head: (fresh) => inner.head(fresh),
      append: (draft) => inner.append(draft),
      appendOnce: (draft, retentionMs) => inner.appendOnce(draft, retentionMs),
      read: (first, last) => inner.read(first, last),
      trim: (ms) => inner.trim(ms),
      change: (change) => inner.change(change),
      histories: (ids) => inner.histories(ids),
      members: (group) => inner.members(group),
      register: (ids) => inner.register(ids),
      touch: (ids) => inner.touch(ids),
      isLive: (id) => inner.isLive(id),
      dueForExpiry: (limit) => inner.dueForExpiry(limit),
      beat: (info) => inner.beat(info),
      beats: () => inner.beats(),
      forget: (id) => inner.forget(id),
      ...(inner.sendProbe
        ? { sendProbe: (token: string) => inner.sendProbe?.(token) ?? Promise.resolve() }
        : {}),
      ...(inner.restartTail
        ? { restartTail: (from: number) => inner.restartTail?.(from) ?? Promise.resolve() }
        : {}),
      ...presenceOf(inner),
    };
  }
}
