/**
 * What the private brokers share: a process in a directory of its own, waited for until it
 * answers, killed (SIGKILL), restarted on the same ports and data, and removed.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { killOnExit } from '../kill-on-exit.js';

/**
 * Polls `answers` every 50 ms until it is true; throws naming `what` when the process exits
 * first or `timeoutMs` passes.
 */
export async function waitUntilAnswering(
  what: string,
  child: ChildProcess,
  answers: () => Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await answers())) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`${what} did not start`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** SIGKILL (nothing gets a goodbye: the broker recovers on its next start) and wait for the exit. */
export async function killProcess(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** One private broker process; subclasses say how it starts (and on which ports). */
export abstract class BrokerProcess {
  private current: ChildProcess | null = null;

  /** The running broker; setting it also has it killed if this process exits first. */
  protected get child(): ChildProcess | null {
    return this.current;
  }

  protected set child(child: ChildProcess | null) {
    this.current = child;
    if (child !== null) killOnExit(child);
  }

  protected constructor(
    /** Its private directory (data, config, logs), removed by stop(). */
    readonly dir: string,
  ) {}

  /** Spawns the broker and resolves once it answers. */
  protected abstract startProcess(): Promise<void>;

  /** Stops the broker with SIGKILL: nothing gets a goodbye, it recovers on its next start. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    await killProcess(child);
  }

  /** SIGKILL, then start again on the same ports and data directory. */
  async restart(): Promise<void> {
    await this.kill();
    await this.startProcess();
  }

  /** Kills the broker and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
