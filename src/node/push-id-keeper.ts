import type { Backplane } from '../backplane/backplane.js';
import type { PushId } from '../core/push-id.js';
import type { Dispatcher } from './dispatcher.js';
import type { PeriodicTasks } from './periodic-tasks.js';

/** Push IDs touched per backplane call. */
const TOUCH_BATCH = 1000;

/**
 * Keeps the push IDs this node holds alive in the backplane: held ones are refreshed three
 * times per TTL (a held push ID must never expire); released ones within a second, so a push
 * ID expires one TTL after its last listener let go of it, not earlier.
 */
export function keepPushIdsAlive(
  tasks: PeriodicTasks,
  backplane: Backplane,
  dispatcher: Dispatcher,
  ttlMs: number,
): void {
  const touchAll = async (pushIds: readonly PushId[]): Promise<void> => {
    for (let i = 0; i < pushIds.length; i += TOUCH_BATCH) {
      await backplane.touch(pushIds.slice(i, i + TOUCH_BATCH));
    }
  };
  tasks.every(Math.max(100, Math.floor(ttlMs / 3)), () => touchAll(dispatcher.heldPushIds()));
  tasks.every(Math.max(100, Math.min(1000, Math.floor(ttlMs / 3))), () =>
    touchAll(dispatcher.takeReleased()),
  );
}
