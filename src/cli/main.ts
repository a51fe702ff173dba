#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { ConfigError, helpText, loadConfig } from '../config/load-config.js';
import { EpushNode } from '../node/epush-node.js';
import { createLogger } from '../observability/logger.js';

/** Exit code for a configuration the node cannot start with. */
const EXIT_BAD_CONFIG = 2;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(helpText());
    return command === undefined ? EXIT_BAD_CONFIG : 0;
  }
  if (command !== 'start') {
    process.stderr.write(`epush: unknown command "${command}" (try epush --help)\n`);
    return EXIT_BAD_CONFIG;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(helpText());
    return 0;
  }
  let config;
  try {
    config = loadConfig({
      argv: rest,
      env: process.env,
      readFile: (path) => readFileSync(path, 'utf8'),
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`epush: ${error.message}\n`);
      return EXIT_BAD_CONFIG;
    }
    throw error;
  }

  const log = createLogger(config.logLevel, config.nodeId);
  const node = new EpushNode(config, { log });
  try {
    await node.start();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`epush: cannot start: ${message}\n`);
    return 1;
  }
  if (config.insecureDev) log.warn('--insecure-dev: the application API needs no key on this node');
  process.stdout.write(
    `epush listening on ${node.url} (node ${config.nodeId}, backplane ${node.backplane.kind})\n`,
  );

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'draining');
      node.drain().then(
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
  });
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
