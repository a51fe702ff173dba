// The client treats cursors as opaque, except here: when it holds several listens (more than 100
// push IDs) it must resume all of them from the oldest of their cursors. The server's cursor is
// `<epoch>-<seq base36>` (src/core/cursor.ts); cursors of different epochs are not comparable.
const CURSOR_PATTERN = /^([a-z0-9]{1,24})-([0-9a-z]{1,11})$/;

/** Negative when `a` is older than `b`, 0 when equal, positive when newer; null when unordered. */
export function compareCursors(a: string, b: string): number | null {
  if (a === b) return 0;
  const ma = CURSOR_PATTERN.exec(a);
  const mb = CURSOR_PATTERN.exec(b);
  if (!ma || !mb || ma[1] !== mb[1]) return null;
  return parseInt(ma[2] ?? '', 36) - parseInt(mb[2] ?? '', 36);
}

/**
 * The cursor to resume every listen from: the oldest known one (re-reading is safe, the
 * dedupe memory drops what was shown), or `fallback` when they are not comparable. A listen
 * without a cursor yet ("from now") is skipped: resuming it from an older cursor only re-reads.
 */
export function oldestCursor(
  cursors: readonly (string | null)[],
  fallback: string | null,
): string | null {
  let oldest: string | null = null;
  for (const cursor of cursors) {
    if (cursor === null) continue;
    if (oldest === null) {
      oldest = cursor;
      continue;
    }
    const order = compareCursors(cursor, oldest);
    if (order === null) return fallback;
    if (order < 0) oldest = cursor;
  }
  return oldest ?? fallback;
}

/** The older of two cursors (`b` when `a` is unknown); `a` when they are not comparable. */
export function olderCursor(a: string | null, b: string): string {
  if (a === null) return b;
  const order = compareCursors(b, a);
  return order !== null && order < 0 ? b : a;
}
