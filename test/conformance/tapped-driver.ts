import type { BackplaneDriver, DriverLink, LogEntry } from '../../src/backplane/driver.js';

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

  close = (): Promise<void> => this.inner.close();
  head: BackplaneDriver['head'] = (fresh) => this.inner.head(fresh);
  append: BackplaneDriver['append'] = (draft) => this.inner.append(draft);
  read: BackplaneDriver['read'] = (first, last) => this.inner.read(first, last);
  trim: BackplaneDriver['trim'] = (ms) => this.inner.trim(ms);
  change: BackplaneDriver['change'] = (change) => this.inner.change(change);
  histories: BackplaneDriver['histories'] = (ids) => this.inner.histories(ids);
  members: BackplaneDriver['members'] = (group) => this.inner.members(group);
  register: BackplaneDriver['register'] = (ids) => this.inner.register(ids);
  touch: BackplaneDriver['touch'] = (ids) => this.inner.touch(ids);
  isLive: BackplaneDriver['isLive'] = (id) => this.inner.isLive(id);
  dueForExpiry: BackplaneDriver['dueForExpiry'] = (limit) => this.inner.dueForExpiry(limit);
  beat: BackplaneDriver['beat'] = (info) => this.inner.beat(info);
  beats: BackplaneDriver['beats'] = () => this.inner.beats();
  forget: BackplaneDriver['forget'] = (id) => this.inner.forget(id);

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
      close: this.close,
      head: this.head,
      append: this.append,
      read: this.read,
      trim: this.trim,
      change: this.change,
      histories: this.histories,
      members: this.members,
      register: this.register,
      touch: this.touch,
      isLive: this.isLive,
      dueForExpiry: this.dueForExpiry,
      beat: this.beat,
      beats: this.beats,
      forget: this.forget,
      ...(inner.sendProbe
        ? { sendProbe: (token: string) => inner.sendProbe?.(token) ?? Promise.resolve() }
        : {}),
      ...(inner.restartTail
        ? { restartTail: (from: number) => inner.restartTail?.(from) ?? Promise.resolve() }
        : {}),
    };
  }
}
