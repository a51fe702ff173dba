import { readFileSync } from 'node:fs';

/** File descriptors kept free for the backplane's sockets, log files and the like. */
export const RESERVED_FILE_DESCRIPTORS = 256;
/** The derived default never goes below this, however low the open-files limit. */
const MIN_DERIVED_CONNECTIONS = 64;

/**
 * The process's open-files soft limit, from `/proc/self/limits` (Linux; Node has no getrlimit,
 * and raises the soft limit to the hard one at start-up). Null where it cannot be read, or when
 * it is unlimited.
 */
export function openFilesSoftLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'latin1');
    } catch {
      return null;
    }
  }
  const match = /^Max open files\s+(\S+)/m.exec(text);
  if (match === null) return null;
  const soft = Number(match[1]);
  return Number.isSafeInteger(soft) && soft > 0 ? soft : null;
}

/**
 * `--max-connections`' default: the open-files soft limit minus {@link RESERVED_FILE_DESCRIPTORS}
 * (at least 64), so that refusing a connection with a clear answer happens before accept() fails
 * with EMFILE; 0 (no limit) where the limit cannot be read.
 */
export function defaultMaxConnections(limitsText?: string): number {
  const soft = openFilesSoftLimit(limitsText);
  if (soft === null) return 0;
  return Math.max(MIN_DERIVED_CONNECTIONS, soft - RESERVED_FILE_DESCRIPTORS);
}
