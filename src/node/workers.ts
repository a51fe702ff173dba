import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Backplane } from '../backplane/backplane.js';
import { IpcBackplane } from '../backplane/ipc-backplane.js';
import { DriverRelay } from '../backplane/ipc/driver-relay.js';
import {
  isRelayMessage,
  type RelayChannel,
  type RelayMessage,
} from '../backplane/ipc/ipc-driver.js';
import { MEMORY_GUARANTEES } from '../backplane/memory-backplane.js';
import type { EpushConfig } from '../config/flags.js';
import { backplaneOptions, createBackplane } from './create-backplane.js';

/** A worker tells the primary it is serving (not a relay message: it is about the process). */
interface WorkerReady {
  readonly epushWorker: 'ready';
  readonly url: string;
}

const RESTART_DELAY_MS = 1000;

function isWorkerReady(value: unknown): value is WorkerReady {
  return typeof value === 'object' && value !== null && 'epushWorker' in value;
}

/** This process's index among the workers (0 in the primary or without workers). */
export function workerIndex(): number {
  return cluster.isWorker ? Number(process.env.EPUSH_WORKER_INDEX ?? cluster.worker?.id ?? 0) : 0;
}

/**
 * The backplane of a worker: with `memory` the primary's, relayed over IPC so every worker is a
 * node of one cluster; otherwise its own connection to the shared backplane.
 */
export function workerBackplane(config: EpushConfig, workers: number): Backplane {
  if (config.backplane !== 'memory') return createBackplane(config);
  const channel: RelayChannel = {
    send: (message) => process.send?.(message),
    onMessage: (listener) => {
      process.on('message', (message: unknown) => {
        if (isRelayMessage(message)) listener(message);
      });
    },
  };
  return new IpcBackplane(
    channel,
    'memory',
    {
      ...MEMORY_GUARANTEES,
      summary: `one machine: ${workers} workers share the primary process's memory log; exact resume while the primary lives; everything is lost when it exits`,
    },
    backplaneOptions(config),
  );
}

/** Tells the primary that this worker serves at `url`. */
export function reportWorkerReady(url: string): void {
  const message: WorkerReady = { epushWorker: 'ready', url };
  process.send?.(message);
}

/**
 * Runs the primary of `--workers N`: forks N workers that share the port (node:cluster), serves
 * the memory backplane to them when that is the backplane, prints the ready line once all are
 * serving, restarts a worker that dies, and on SIGTERM drains every worker before exiting.
 */
export async function runPrimary(
  config: EpushConfig,
  count: number,
  log: Logger,
  printReady: (url: string) => void,
): Promise<number> {
  cluster.setupPrimary({ serialization: 'advanced' });
  const relay = config.backplane === 'memory' ? new DriverRelay(backplaneOptions(config)) : null;
  let stopping = false;
  const ready = new Set<number>();
  let announced = false;

  const fork = (index: number): void => {
    const worker = cluster.fork({
      EPUSH_WORKER_INDEX: String(index),
      EPUSH_WORKER_COUNT: String(count),
    });
    const channel = relay ? channelOf(worker) : null;
    if (channel) relay?.attach(channel);
    worker.on('message', (message: unknown) => {
      if (!isWorkerReady(message)) return;
      ready.add(index);
      if (!announced && ready.size === count) {
        announced = true;
        printReady(message.url);
      }
    });
    worker.on('exit', (code, signal) => {
      ready.delete(index);
      if (channel) relay?.detach(channel);
      if (stopping) return;
      log.error({ worker: index, code, signal }, 'worker died; starting a new one');
      setTimeout(() => {
        if (!stopping) fork(index);
      }, RESTART_DELAY_MS).unref();
    });
  };
  for (let index = 1; index <= count; index++) fork(index);

  return new Promise<number>((resolve) => {
    const shutdown = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'draining every worker');
      const workers = Object.values(cluster.workers ?? {}).filter(
        (w): w is Worker => w !== undefined,
      );
      let failed = false;
      let remaining = workers.length;
      if (remaining === 0) resolve(0);
      for (const worker of workers) {
        worker.once('exit', (code) => {
          if (code !== 0) failed = true;
          remaining -= 1;
          if (remaining === 0) resolve(failed ? 1 : 0);
        });
        worker.process.kill(signal);
      }
    };
    process.once('SIGTERM', () => {
      shutdown('SIGTERM');
    });
    process.once('SIGINT', () => {
      shutdown('SIGINT');
    });
  });
}

function channelOf(worker: Worker): RelayChannel {
  return {
    send: (message: RelayMessage) => {
      if (worker.isConnected()) worker.send(message);
    },
    onMessage: (listener) => {
      worker.on('message', (message: unknown) => {
        if (isRelayMessage(message)) listener(message);
      });
    },
  };
}
