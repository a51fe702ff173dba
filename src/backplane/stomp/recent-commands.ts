import type { Entry } from './stomp-protocol.js';

/** How long a command id is remembered, to recognise a command the broker redelivers. */
const RECENT_COMMANDS_MS = 10 * 60_000;
const RECENT_COMMANDS_MAX = 200_000;

/**
 * Commands that changed the log (or found it already changed), by id, with the seq they got: one
 * the broker redelivers to a new sequencer is answered, not applied twice. Rejections and
 * liveness are not remembered: those are judged again, which is harmless (a push ID that was
 * unknown never comes back, and liveness only extends), and the caller gets the fresh answer.
 */
export class RecentCommands {
  /** In order of application, so the oldest go first. */
  private readonly recent = new Map<string, { seq: number | undefined; at: number }>();

  /** The seq a remembered command got (undefined inside when it appended nothing). */
  get(c: string): { seq: number | undefined } | undefined {
    return this.recent.get(c);
  }

  remember(entry: Entry, at: number): void {
    if (entry.k === 'event' && entry.c !== undefined) {
      this.recent.set(entry.c, { seq: entry.event.seq, at });
    } else if (entry.k === 'ok') {
      this.recent.set(entry.c, { seq: entry.seq, at });
    }
  }

  forgetOld(now: number): void {
    for (const [c, { at }] of this.recent) {
      if (this.recent.size <= RECENT_COMMANDS_MAX && at > now - RECENT_COMMANDS_MS) break;
      this.recent.delete(c);
    }
  }

  clear(): void {
    this.recent.clear();
  }
}
