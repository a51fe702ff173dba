import { CURSOR_PATTERN } from '../../core/cursor.js';

/**
 * What the original ICEpush server kept per browser in its memory (and lost with the node), kept
 * instead in a cookie of our own that the browser sends with every `listen.icepush`, whichever
 * node it reaches: the position in the cluster's event log after the last answer the browser
 * received, the position before its last notification (for the re-send when the window holding
 * the connection changes), that window, the `ice.push.sequence` counter and the push-storm count.
 * A cookie is set only by an answer the browser got, so the position never runs ahead of what it
 * received (at least once, with no node-local state and no stickiness). The cookie tells nothing
 * secret: a browser can only move its own position, for push IDs it already knows.
 */
export interface IcepushBrowserState {
  /** Where the next listen reads from; '' for "from now". */
  readonly cursor: string;
  /** Where the read of the last answer with notifications started; '' when none yet. */
  readonly notifiedFrom: string;
  /** `ice.push.window` of the last answered listen. */
  readonly window: string;
  /** The last `ice.push.sequence` this browser was given (0: none yet). */
  readonly sequence: number;
  /** Consecutive listens less than the storm interval apart. */
  readonly tightLoops: number;
  /** When the last listen arrived (ms since the epoch; 0: never). */
  readonly lastListenAt: number;
}

export const STATE_COOKIE = 'epush.icepush';
/** `ice.push.window` is 5 hex digits in the original client; anything short and plain is taken. */
const WINDOW_PATTERN = /^[A-Za-z0-9_-]{1,32}$/;
/** More than this many consecutive listens closer than the interval is a push storm. */
export const STORM_MAX_TIGHT_LOOPS = 25;
export const STORM_LOOP_INTERVAL_MS = 275;

export const EMPTY_STATE: IcepushBrowserState = {
  cursor: '',
  notifiedFrom: '',
  window: '',
  sequence: 0,
  tightLoops: 0,
  lastListenAt: 0,
};

export function isWindowId(value: string): boolean {
  return WINDOW_PATTERN.test(value);
}

export function encodeState(state: IcepushBrowserState): string {
  return [
    '1',
    state.cursor,
    state.notifiedFrom,
    state.window,
    String(state.sequence),
    String(state.tightLoops),
    state.lastListenAt.toString(36),
  ].join('~');
}

/** The state a cookie carries; anything malformed is the empty state (a fresh start). */
export function decodeState(value: string | undefined): IcepushBrowserState {
  if (value === undefined) return EMPTY_STATE;
  const parts = value.split('~');
  if (parts.length !== 7 || parts[0] !== '1') return EMPTY_STATE;
  const [, cursor = '', notifiedFrom = '', window = '', sequence = '', tight = '', at = ''] = parts;
  const validCursor = (text: string): boolean => text === '' || CURSOR_PATTERN.test(text);
  if (!validCursor(cursor) || !validCursor(notifiedFrom)) return EMPTY_STATE;
  if (window !== '' && !isWindowId(window)) return EMPTY_STATE;
  const numbers = [Number(sequence), Number(tight), parseInt(at, 36)];
  if (!/^\d{1,15}$/.test(sequence) || !/^\d{1,6}$/.test(tight) || !/^[0-9a-z]{1,11}$/.test(at)) {
    return EMPTY_STATE;
  }
  const [seq = 0, tightLoops = 0, lastListenAt = 0] = numbers;
  return { cursor, notifiedFrom, window, sequence: seq, tightLoops, lastListenAt };
}

/**
 * The original's sequence tagging: the browser echoes the last `ice.push.sequence` it was given
 * (and some clients add one when another window takes the connection over); the answer carries
 * one more than the larger of that and the server's own count.
 */
export function nextSequence(requestSequence: number | null, stored: number): number {
  if (requestSequence !== null && requestSequence >= stored) return requestSequence + 1;
  return stored + 1;
}

/** Counts a listen arriving at `now`: consecutive tight loops, and whether it is a push storm. */
export function countListen(
  state: IcepushBrowserState,
  now: number,
): { tightLoops: number; storm: boolean } {
  const tight = state.lastListenAt > 0 && now - state.lastListenAt < STORM_LOOP_INTERVAL_MS;
  const tightLoops = tight ? state.tightLoops + 1 : 0;
  return { tightLoops, storm: tightLoops > STORM_MAX_TIGHT_LOOPS };
}
