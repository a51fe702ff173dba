/**
 * Child processes (brokers, epush nodes, balancers, application servers) die with the process
 * that started them, whatever ended it: a failed test, an uncaught error, or the test runner's
 * SIGTERM to a file past its time limit. Node runs no 'exit' handlers when a signal kills it, so
 * SIGTERM is turned into an exit here.
 */
import type { ChildProcess } from 'node:child_process';

const live = new Map<ChildProcess, NodeJS.Signals>();
let installed = false;

function install(): void {
  installed = true;
  process.on('exit', () => {
    for (const [child, signal] of live) child.kill(signal);
  });
  process.once('SIGTERM', () => process.exit(143));
}

/** Kills `child` with `signal` if this process exits first. */
export function killOnExit(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!installed) install();
  live.set(child, signal);
  child.once('exit', () => live.delete(child));
}
