import { TimerWheel } from '../core/timer-wheel.js';
import type { WaitingListener } from './waiting-listener.js';

/** Resolution of the hold timer wheel. */
const WHEEL_MS = 250;

/**
 * The hold deadlines of every waiting listener on one shared wheel (no timer per listener). A
 * slot already in the wheel that fires no later than a new deadline is kept and re-armed when it
 * fires, so answering and re-polling cost no wheel operation in the steady state.
 */
export class HoldTimers {
  /** How often {@link expire} should run. */
  static readonly TICK_MS = WHEEL_MS;
  private readonly wheel: TimerWheel<WaitingListener>;

  constructor(now: number) {
    this.wheel = new TimerWheel(WHEEL_MS, now);
  }

  /** Sets the listener's hold deadline. */
  arm(listener: WaitingListener, deadline: number): void {
    listener.deadline = deadline;
    if (listener.wheelSlot !== 0) {
      if (listener.wheelSlot * WHEEL_MS <= deadline) return;
      this.wheel.cancel(listener, listener.wheelSlot);
    }
    listener.wheelSlot = this.wheel.schedule(listener, deadline);
  }

  cancel(listener: WaitingListener): void {
    if (listener.wheelSlot !== 0) this.wheel.cancel(listener, listener.wheelSlot);
    listener.wheelSlot = 0;
  }

  /**
   * Runs `onDue` for each listener whose hold is due at `now`. Parked listeners are skipped
   * (their park queue entry times them); one armed early for a later deadline is re-armed.
   */
  expire(now: number, onDue: (listener: WaitingListener) => void): void {
    for (const listener of this.wheel.advance(now)) {
      listener.wheelSlot = 0;
      if (listener.parked) continue;
      if (listener.deadline > now) {
        listener.wheelSlot = this.wheel.schedule(listener, listener.deadline);
        continue;
      }
      onDue(listener);
    }
  }
}
