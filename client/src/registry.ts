interface Registration {
  pushIds: readonly string[];
  seenAt: number;
  /** Listen tokens of some of these push IDs. */
  tokens: Readonly<Record<string, string>> | undefined;
}

/**
 * Which tab listens on which push IDs. Every tab keeps one, fed by the registrations all tabs
 * broadcast, so a tab that becomes leader already knows the union it must listen on. Only the
 * leader's view matters for the connection; a follower's is a warm standby.
 */
export class TabRegistry {
  private readonly entries = new Map<string, Registration>();

  /** Replaces `owner`'s push IDs (an empty list removes the owner) and marks it alive. */
  set(
    owner: string,
    pushIds: readonly string[],
    now: number,
    tokens?: Readonly<Record<string, string>>,
  ): void {
    if (pushIds.length === 0) {
      this.entries.delete(owner);
      return;
    }
    this.entries.set(owner, { pushIds: [...pushIds], seenAt: now, tokens });
  }

  /**
   * The listen token of `pushId`: the newest registration's that has one (two tabs may hold
   * tokens of different ages for one push ID; any valid one will do), null when none has.
   */
  tokenOf(pushId: string): string | null {
    let found: string | null = null;
    let seenAt = Number.NEGATIVE_INFINITY;
    for (const entry of this.entries.values()) {
      const token = entry.tokens?.[pushId];
      if (
        token !== undefined &&
        Object.hasOwn(entry.tokens ?? {}, pushId) &&
        entry.seenAt >= seenAt
      ) {
        found = token;
        seenAt = entry.seenAt;
      }
    }
    return found;
  }

  /** Removes `owner`; returns the push IDs it had (none when it was unknown). */
  delete(owner: string): readonly string[] {
    const entry = this.entries.get(owner);
    this.entries.delete(owner);
    return entry?.pushIds ?? [];
  }

  has(owner: string): boolean {
    return this.entries.has(owner);
  }

  /** Forgets push IDs everywhere (the server reported them expired). */
  dropPushIds(pushIds: readonly string[]): void {
    const dropped = new Set(pushIds);
    for (const [owner, entry] of this.entries) {
      const kept = entry.pushIds.filter((id) => !dropped.has(id));
      if (kept.length === 0) this.entries.delete(owner);
      else if (kept.length !== entry.pushIds.length) entry.pushIds = kept;
    }
  }

  /** Drops every owner but those in `keep` not heard from since `cutoff`; returns them. */
  sweep(cutoff: number, keep: readonly string[]): string[] {
    const dropped: string[] = [];
    for (const [owner, entry] of this.entries) {
      if (!keep.includes(owner) && entry.seenAt < cutoff) {
        this.entries.delete(owner);
        dropped.push(owner);
      }
    }
    return dropped;
  }

  /** Every registered push ID once, sorted (a stable order keeps chunks and comparisons stable). */
  union(): string[] {
    const all = new Set<string>();
    for (const entry of this.entries.values()) for (const id of entry.pushIds) all.add(id);
    return [...all].sort();
  }
}
