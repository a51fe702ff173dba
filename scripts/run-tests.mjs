#!/usr/bin/env node
// `npm test`: runs every *.test.ts under src/, test/ and client/ with node:test through tsx, after
// the set-up a fresh clone needs (the Debian packages of .ci/apt-packages, `npm run build` when
// dist/ is missing or stale). Node 20's --test takes no globs, so the files are found here.
//
//   npm test                          everything; afterwards the checkout must be as it was
//   npm test -- utf8 e2e/admin        only the files whose path contains one of the fragments
//   npm test -- --concurrency 1       test files run one at a time (default 2: two lanes)
//   EPUSH_TEST_FILE_LIMIT_MS=N        a file running longer fails (default 8 minutes)
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ensureAptPackages } from './apt-packages.mjs';
import { ensureFreshBuild } from './fresh-build.mjs';
import { watchCheckout } from './tracked-files-guard.mjs';

function find(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...find(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

/** Multi-node clusters, browsers and application servers: the heavy lane. */
const HEAVY = ['test/cluster/', 'test/e2e/'];
/** In the other lane the slower suites (over real brokers) start first. */
const LIGHT_ORDER = ['test/conformance/', 'test/integration/'];

function weight(file) {
  const at = LIGHT_ORDER.findIndex((dir) => file.startsWith(dir));
  return at === -1 ? LIGHT_ORDER.length : at;
}

const isHeavy = (file) => HEAVY.some((dir) => file.startsWith(dir));

/**
 * A test file that runs longer than this fails, named, and its lane goes on (the longest suite
 * takes under a minute on two cores); a hung file used to hold its lane until CI's own timeout.
 * The runner stops it with SIGTERM, and what it started dies with it (testbed/kill-on-exit.ts).
 */
const FILE_LIMIT_MS = Number(process.env.EPUSH_TEST_FILE_LIMIT_MS ?? 8 * 60_000);

const args = process.argv.slice(2);
// Two lanes: most of the suite waits on processes, brokers and browsers, so two files side by side
// take about 60 % of the time of one after the other, on two cores too. One lane runs the
// multi-node and browser files one at a time, the other everything else: two clusters (or two
// browsers with their clusters) never share the machine, which made timing-bound tests flake.
let concurrency = 2;
const filters = [];
for (let i = 0; i < args.length; i += 1) {
  const arg = args[i];
  if (arg === '--concurrency') concurrency = Number(args[++i]);
  else if (arg.startsWith('--concurrency='))
    concurrency = Number(arg.slice('--concurrency='.length));
  else filters.push(arg);
}
if (!Number.isInteger(concurrency) || concurrency < 1) {
  console.error('run-tests: --concurrency takes a whole number from 1');
  process.exit(2);
}

const files = ['src', 'test', 'client']
  .flatMap((dir) => {
    try {
      return find(dir);
    } catch {
      return [];
    }
  })
  .filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter)))
  .sort((a, b) => weight(a) - weight(b) || a.localeCompare(b));

if (files.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}

if (!ensureAptPackages() || !ensureFreshBuild()) process.exit(1);

// Only the whole suite is held to leaving the checkout clean: a filtered run is often made while
// files are being edited.
const changedFiles = filters.length === 0 ? watchCheckout() : null;

/**
 * Runs one lane's files one after the other (`parallel` at a time). The first lane prints as it
 * goes; another lane's report is printed in one piece when it ends, so the two do not mix.
 */
function runLane(laneFiles, parallel, live, title) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--test',
        `--test-concurrency=${parallel}`,
        `--test-timeout=${FILE_LIMIT_MS}`,
        '--test-reporter=spec',
        ...laneFiles,
      ],
      { stdio: live ? 'inherit' : ['ignore', 'pipe', 'pipe'] },
    );
    const out = [];
    child.stdout?.on('data', (chunk) => out.push(chunk));
    child.stderr?.on('data', (chunk) => out.push(chunk));
    child.on('close', (code) => {
      if (!live) process.stdout.write(`\n── ${title} ──\n${Buffer.concat(out).toString()}\n`);
      resolve(code ?? 1);
    });
  });
}

const heavy = files.filter(isHeavy);
const light = files.filter((file) => !isHeavy(file));
const lanes =
  concurrency === 1 || heavy.length === 0 || light.length === 0
    ? [runLane(files, concurrency === 1 ? 1 : 2, true, 'tests')]
    : [
        runLane(heavy, 1, true, 'clusters and browsers'),
        runLane(
          light,
          concurrency - 1,
          false,
          'the other test files (conformance, integration, units)',
        ),
      ];
const statuses = await Promise.all(lanes);
const result = { status: statuses.every((code) => code === 0) ? 0 : 1 };

const changed = changedFiles?.() ?? [];
if (changed.length > 0) {
  console.error(
    `\nrun-tests: the test run changed files of the checkout (tests may write only to temp or ` +
      `gitignored places):\n${changed.map((line) => `  ${line}`).join('\n')}`,
  );
  process.exit(1);
}
process.exit(result.status ?? 1);
