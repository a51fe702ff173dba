import type { StorageLike } from './types.js';

/** What the leader persists after every answer, so a reload or a new leader resumes exactly. */
export interface SavedState {
  /** Every notification of the union up to this cursor was delivered to the tabs. */
  readonly cursor: string | null;
  /** The union the leader listened on, for a new leader that has not heard the registrations. */
  readonly pushIds: readonly string[];
  readonly savedAt: number;
}

/**
 * The leader's state in localStorage, one key per channel. Best effort: without storage (or with
 * a full one) handover still works through the tab channel, only a reload of the last tab
 * starts "from now".
 */
export class StateStore {
  constructor(
    private readonly storage: StorageLike | null,
    private readonly key: string,
  ) {}

  load(): SavedState | null {
    if (!this.storage) return null;
    try {
      const raw = this.storage.getItem(this.key);
      if (raw === null) return null;
      const value: unknown = JSON.parse(raw);
      if (typeof value !== 'object' || value === null) return null;
      const state = value as Record<string, unknown>;
      const { cursor, pushIds, savedAt } = state;
      if (cursor !== null && typeof cursor !== 'string') return null;
      if (!isStrings(pushIds) || typeof savedAt !== 'number') return null;
      return { cursor, pushIds, savedAt };
    } catch {
      return null;
    }
  }

  save(state: SavedState): void {
    if (!this.storage) return;
    try {
      this.storage.setItem(this.key, JSON.stringify(state));
    } catch {
      // Quota or a storage that went away: the tab channel still carries the cursor.
    }
  }
}

function isStrings(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}
