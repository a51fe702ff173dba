#!/usr/bin/env node
import { randomBytes } from 'node:crypto';
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { EpushConfig } from '../config/flags.js';
import { ConfigError, helpText, loadConfig } from '../config/load-config.js';
import { DemoApps } from '../demo/demo-apps.js';
import { EpushNode } from '../node/epush-node.js';
import { reportWorkerReady, runPrimary, workerBackplane, workerIndex } from '../node/workers.js';
import { createLogger } from '../observability/logger.js';

/** Exit code for a configuration the node cannot start with. */
const EXIT_BAD_CONFIG = 2;

const DEMO_HELP = `
  epush demo [flags]      a node (memory backplane) plus two sample applications, chat and
                          ticker, on one site; extra flags: --demo-port N (default 8081),
                          --ticker-ms N (default 1000, 0 = off)
`;

function fail(message: string): number {
  process.stderr.write(`epush: ${message}\n`);
  return EXIT_BAD_CONFIG;
}

/** Takes `--name value` / `--name=value` out of argv (for the demo's own flags). */
function takeFlag(argv: string[], name: string): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === `--${name}`) return argv.splice(i, 2)[1];
    if (arg.startsWith(`--${name}=`)) return argv.splice(i, 1)[0]?.slice(name.length + 3);
  }
  return undefined;
}

function readConfig(argv: string[]): EpushConfig {
  return loadConfig({ argv, env: process.env, readFile: (path) => readFileSync(path, 'utf8') });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(helpText() + DEMO_HELP);
    return command === undefined ? EXIT_BAD_CONFIG : 0;
  }
  if (command !== 'start' && command !== 'demo') {
    return fail(`unknown command "${command}" (try epush --help)`);
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText() + DEMO_HELP);
    return 0;
  }
  let demo: { port: number; tickerMs: number; apiKey: string } | null = null;
  let config: EpushConfig;
  try {
    if (command === 'demo') {
      const port = Number(takeFlag(rest, 'demo-port') ?? 8081);
      const tickerMs = Number(takeFlag(rest, 'ticker-ms') ?? 1000);
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        return fail('--demo-port must be an integer from 0 to 65535');
      if (!Number.isInteger(tickerMs) || tickerMs < 0)
        return fail('--ticker-ms must be a non-negative integer');
      const apiKey = randomBytes(24).toString('base64url');
      config = readConfig(['--api-key', apiKey, ...rest]);
      demo = { port, tickerMs, apiKey: config.apiKey[0] ?? apiKey };
    } else {
      config = readConfig(rest);
    }
  } catch (error) {
    if (error instanceof ConfigError) return fail(error.message);
    throw error;
  }

  const workers = config.workers === 'auto' ? availableParallelism() : config.workers;
  const readyLine = (url: string): void => {
    process.stdout.write(
      `epush listening on ${url} (node ${config.nodeId}, backplane ${backplaneKind(config.backplane)})\n`,
    );
  };
  if (workers > 1 && cluster.isPrimary) {
    if (demo) return fail('epush demo runs one process; drop --workers');
    const log = createLogger(config.logLevel, `${config.nodeId}-primary`);
    return runPrimary(config, workers, log, readyLine);
  }
  if (cluster.isWorker) config.nodeId = `${config.nodeId}-w${workerIndex()}`;

  const log = createLogger(config.logLevel, config.nodeId);
  const node = new EpushNode(
    config,
    cluster.isWorker ? { log, backplane: workerBackplane(config, workers) } : { log },
  );
  let apps: DemoApps | null = null;
  try {
    await node.start();
    if (demo) {
      apps = new DemoApps({
        pushUrl: node.url,
        apiKey: demo.apiKey,
        host: config.host,
        port: demo.port,
        tickerIntervalMs: demo.tickerMs,
      });
      await apps.start();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`epush: cannot start: ${message}\n`);
    await node.stop().catch(() => undefined);
    return 1;
  }
  if (config.insecureDev) log.warn('--insecure-dev: the application API needs no key on this node');
  if (cluster.isWorker) reportWorkerReady(node.url);
  else readyLine(node.url);
  if (apps)
    process.stdout.write(
      `epush demo: open ${apps.url}/ (chat: ${apps.url}/chat/, ticker: ${apps.url}/ticker/)\n`,
    );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'draining');
      Promise.all([node.drain(), apps?.stop()]).then(
        () => {
          log.info('drained; exiting');
          resolve(0);
        },
        (error: unknown) => {
          log.error({ err: error }, 'drain failed');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', () => {
      shutdown('SIGTERM');
    });
    process.once('SIGINT', () => {
      shutdown('SIGINT');
    });
    // A worker whose primary is gone has nobody to serve for.
    if (cluster.isWorker) {
      process.once('disconnect', () => {
        shutdown('disconnect');
      });
    }
  });
}

function backplaneKind(url: string): string {
  const scheme = url === 'memory' ? 'memory' : (url.split(':')[0] ?? url);
  return scheme === 'rediss' ? 'redis' : scheme;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Give pino's async destination a moment to flush, then leave even if a socket lingers.
    setTimeout(() => process.exit(code), 100).unref();
  },
  (error: unknown) => {
    process.stderr.write(
      `epush: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
