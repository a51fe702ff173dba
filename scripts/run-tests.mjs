#!/usr/bin/env node
// `npm test`: runs every *.test.ts under src/, test/ and client/ with node:test through tsx, after
// the set-up a fresh clone needs (the Debian packages of .ci/apt-packages, `npm run build` when
// dist/ is missing or stale). Node 20's --test takes no globs, so the files are found here.
//
//   npm test                          everything; afterwards the checkout must be as it was
//   npm test -- utf8 e2e/admin        only the files whose path contains one of the fragments
//   npm test -- --concurrency 1       test files run one at a time (default 2)
import { spawnSync } from 'node:child_process';
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

/**
 * The slow files start first (multi-node clusters, browsers, application servers, then the
 * conformance suites over real brokers), so the quick unit files fill the end of both lanes
 * instead of one slow file running alone at the end.
 */
function weight(file) {
  const order = ['test/cluster/', 'test/e2e/', 'test/conformance/', 'test/integration/'];
  const at = order.findIndex((dir) => file.startsWith(dir));
  return at === -1 ? order.length : at;
}

const args = process.argv.slice(2);
// Two files at a time: most of the suite waits on processes, brokers and browsers, so two files
// side by side take about 60 % of the time of one after the other, on two cores too.
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

const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec',
    ...files,
  ],
  { stdio: 'inherit' },
);

const changed = changedFiles?.() ?? [];
if (changed.length > 0) {
  console.error(
    `\nrun-tests: the test run changed files of the checkout (tests may write only to temp or ` +
      `gitignored places):\n${changed.map((line) => `  ${line}`).join('\n')}`,
  );
  process.exit(1);
}
process.exit(result.status ?? 1);
