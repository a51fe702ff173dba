/**
 * Runs one target's generator as its own process, pinned to the generator CPU with the raised fd
 * limit; the generator starts and stops the target's stack itself. This side bounds it in time
 * (SIGKILL `graceSeconds` after its own --max-seconds) and afterwards stops whatever stack
 * process it recorded and left behind (pids checked against their start time, never anything
 * else). Resolves with the generator's JSON result, or the reason there is none.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnPinned, stopWithin } from '../lib/processes.js';
import type { Target } from './index.js';
import { isAlive, processStartTime } from '../lib/procfs.js';
import { ROOT, stopPids } from './stack.js';
import type { PeerStack, StackOptions } from './types.js';

export interface TargetProcess {
  /** The generator script and its flags; `--out` and `--pids-file` are added. */
  readonly script: string;
  readonly args: readonly string[];
  readonly cpu: number | null;
  readonly maxSeconds: number;
  readonly graceSeconds?: number;
  readonly out: string;
  readonly pidsFile: string;
  readonly log: (message: string) => void;
}

async function cleanUp(pidsFile: string, log: (message: string) => void): Promise<void> {
  if (!existsSync(pidsFile)) return;
  const recorded = JSON.parse(readFileSync(pidsFile, 'utf8')) as {
    pid: number;
    start: number | null;
  }[];
  const left = recorded
    .filter((one) => isAlive(one.pid) && processStartTime(one.pid) === one.start)
    .map((one) => one.pid);
  if (left.length > 0) {
    log(`stopping ${left.length} process(es) the generator left behind: ${left.join(', ')}`);
    await stopPids(left, 10_000);
  }
}

/** The result is the generator's JSON as written: the caller knows its shape. */
export async function runTargetProcess(
  run: TargetProcess,
): Promise<{ result: unknown } | { reason: string }> {
  const grace = run.graceSeconds ?? 90;
  const generator = spawnPinned(
    run.cpu,
    [
      process.execPath,
      '--import',
      'tsx',
      run.script,
      ...run.args,
      '--max-seconds',
      String(run.maxSeconds),
      '--out',
      run.out,
      '--pids-file',
      run.pidsFile,
    ],
    { cwd: ROOT },
  );
  generator.child.stderr?.pipe(process.stderr, { end: false });
  const hardStop = setTimeout(
    () => {
      run.log(`hard time limit (${run.maxSeconds + grace} s): killing the generator`);
      void stopWithin(generator, 5000, 'SIGKILL');
    },
    (run.maxSeconds + grace) * 1000,
  );
  const exit = await generator.exited;
  clearTimeout(hardStop);
  await cleanUp(run.pidsFile, run.log);
  if (!existsSync(run.out)) {
    return { reason: `the generator wrote no result (exit ${exit.code ?? exit.signal})` };
  }
  const result: unknown = JSON.parse(readFileSync(run.out, 'utf8'));
  rmSync(run.out, { force: true });
  return { result };
}

// --- the generator's side -------------------------------------------------------------------

/** What a generator needs from its flags to start its stack (`--epush-cli`, `--pids-file`…). */
export interface GeneratorStackFlags {
  readonly epushCli: string | undefined;
  readonly epushVersion: string | undefined;
  readonly pidsFile: string | undefined;
}

/**
 * Starts the target's stack from the generator and records its pids (with their start times)
 * in `--pids-file`, so that {@link runTargetProcess} can stop what a dead generator left behind.
 */
export async function startGeneratorStack(
  target: Target,
  options: Omit<StackOptions, 'epushCli' | 'epushVersion'>,
  flags: GeneratorStackFlags,
): Promise<PeerStack> {
  const stack = await target.start({
    ...options,
    ...(flags.epushCli === undefined ? {} : { epushCli: flags.epushCli }),
    ...(flags.epushVersion === undefined ? {} : { epushVersion: flags.epushVersion }),
  });
  recordStackPids(stack, flags.pidsFile);
  return stack;
}

/** Writes the stack's pids, with their start times, to `pidsFile` (none: nothing to do). */
export function recordStackPids(stack: PeerStack, pidsFile: string | undefined): void {
  if (pidsFile === undefined) return;
  const pids = stack.pids().map((pid) => ({ pid, start: processStartTime(pid) }));
  writeFileSync(pidsFile, JSON.stringify(pids));
}

/**
 * Runs a generator's `run` to its end: writes the result to `out` and exits 0, or logs the
 * failure, calls `cleanUp` (stop the listeners and the stack) and exits 1. A last resort stops
 * the stack and exits whatever happens, `hardStopMs` from now.
 */
export function runGenerator<T>(options: {
  readonly run: () => Promise<T>;
  readonly out: string;
  readonly hardStopMs: number;
  readonly log: (message: string) => void;
  readonly cleanUp: () => Promise<unknown>;
}): void {
  const { log, cleanUp } = options;
  const hardStop = setTimeout(() => {
    log('hard time limit reached: stopping the stack');
    void cleanUp().finally(() => process.exit(1));
  }, options.hardStopMs);
  hardStop.unref();
  options.run().then(
    (result) => {
      writeFileSync(options.out, JSON.stringify(result, null, 2));
      process.stdout.write('DONE\n');
      process.exit(0);
    },
    async (failure: unknown) => {
      log(
        `FAILED: ${failure instanceof Error ? (failure.stack ?? failure.message) : String(failure)}`,
      );
      await cleanUp().catch(() => undefined);
      process.exit(1);
    },
  );
}
