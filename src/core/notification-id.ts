import { randomBytes } from 'node:crypto';
import type { NotificationId } from './events.js';

/**
 * Mints cluster-unique notification ids without coordination: 64 random bits chosen once per
 * process, then a counter. Two nodes collide only if their prefixes do (p ≈ n²/2⁶⁵).
 */
export class NotificationIdSource {
  private readonly prefix = randomBytes(8).toString('base64url');
  private counter = 0;

  next(): NotificationId {
    this.counter += 1;
    return `${this.prefix}${this.counter.toString(36)}` as NotificationId;
  }
}
