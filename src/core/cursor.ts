declare const cursorBrand: unique symbol;
/**
 * A position in the cluster-wide event log, as handed to listeners: `<epoch>-<seq base36>`.
 * The epoch names one incarnation of the log; a backplane that lost its log starts a new epoch,
 * so an old cursor is recognised as unresumable (answer `reset`) instead of silently skipping.
 */
export type Cursor = string & { readonly [cursorBrand]: true };

export interface CursorPosition {
  readonly epoch: string;
  /** The last event the holder has seen; the next read starts at `seq + 1`. */
  readonly seq: number;
}

const EPOCH_PATTERN = /^[a-z0-9]{1,24}$/;
/** A cursor's text; its groups are the epoch and the seq in base 36. */
export const CURSOR_PATTERN = /^([a-z0-9]{1,24})-([0-9a-z]{1,11})$/;

export function isEpoch(value: string): boolean {
  return EPOCH_PATTERN.test(value);
}

export function encodeCursor(epoch: string, seq: number): Cursor {
  return `${epoch}-${seq.toString(36)}` as Cursor;
}

/** Parses a cursor a client sent back; `null` when it is not one of ours. */
export function decodeCursor(value: string): CursorPosition | null {
  const match = CURSOR_PATTERN.exec(value);
  if (!match) return null;
  const seq = parseInt(match[2] ?? '', 36);
  if (!Number.isSafeInteger(seq)) return null;
  return { epoch: match[1] ?? '', seq };
}
