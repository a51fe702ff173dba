/**
 * Starting the server and the load generator as separate processes, each pinned to its own CPU
 * with `taskset` and with the fd limit raised by a shell (`ulimit -n`; Node cannot setrlimit).
 * taskset and bash both exec, so the child's pid is the pid of the node process itself.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export const FD_LIMIT = 20_000;

let tasksetChecked: boolean | null = null;

export function hasTaskset(): boolean {
  tasksetChecked ??= spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  return tasksetChecked;
}

/** The argv that runs `argv` on `cpu` (when taskset works) with `ulimit -n FD_LIMIT`. */
export function pinnedArgv(cpu: number | null, argv: readonly string[]): string[] {
  // Raise soft and hard to FD_LIMIT; where the hard limit is lower, take the hard limit.
  const shell = [
    'bash',
    '-c',
    `ulimit -n ${FD_LIMIT} 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"; exec "$@"`,
    'bash',
    ...argv,
  ];
  return cpu !== null && hasTaskset() ? ['taskset', '-c', String(cpu), ...shell] : shell;
}

export interface Spawned {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnPinned(
  cpu: number | null,
  argv: readonly string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; log?: WriteStream; stdin?: boolean },
): Spawned {
  const full = pinnedArgv(cpu, argv);
  const child = spawn(full[0]!, full.slice(1), {
    cwd: options.cwd,
    env: options.env ?? process.env,
    // `stdin: true` gives the child a stdin pipe (for commands); by default it has none.
    stdio: [options.stdin === true ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`cannot start ${argv.join(' ')}`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  if (options.log) {
    child.stdout?.pipe(options.log, { end: false });
    child.stderr?.pipe(options.log, { end: false });
  }
  return { child, pid: child.pid, exited };
}

/** Calls `onLine` for each stdout line of the child. */
export function onStdoutLine(spawned: Spawned, onLine: (line: string) => void): void {
  const stdout = spawned.child.stdout;
  if (!stdout) return;
  createInterface({ input: stdout }).on('line', onLine);
}

/** Resolves with the exit, or kills by pid (TERM, then KILL) once `ms` have passed. */
export async function stopWithin(
  spawned: Spawned,
  ms: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }> {
  let forced = false;
  if (spawned.child.exitCode === null && spawned.child.signalCode === null) {
    try {
      process.kill(spawned.pid, signal);
    } catch {
      // already gone
    }
  }
  const timer = setTimeout(() => {
    forced = true;
    try {
      process.kill(spawned.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }, ms);
  const result = await spawned.exited;
  clearTimeout(timer);
  return { ...result, forced };
}

export function openLog(path: string): WriteStream {
  return createWriteStream(path, { flags: 'a' });
}
