#!/usr/bin/env node
// The Debian packages the tests start (Chromium, redis-server, nginx...), listed one per line in
// .ci/apt-packages. Installs the missing ones when it can (root with apt-get), and otherwise stops
// with the one command that installs them. Used by `npm test` (scripts/run-tests.mjs) and by
// .ci/run, so a fresh machine needs nothing done by hand.
// Usage: node scripts/apt-packages.mjs   (exit 0 when every package is installed afterwards)
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const LIST = join(ROOT, '.ci', 'apt-packages');

/** The packages of .ci/apt-packages (blank lines and `#` comments skipped). */
export function listedPackages() {
  if (!existsSync(LIST)) return [];
  return readFileSync(LIST, 'utf8')
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter((line) => line !== '');
}

/** The listed packages dpkg does not report as installed; null where there is no dpkg. */
export function missingPackages(packages = listedPackages()) {
  if (packages.length === 0) return [];
  const query = spawnSync('dpkg-query', ['-W', '-f=${Package} ${Status}\\n', ...packages], {
    encoding: 'utf8',
  });
  if (query.error) return null;
  const installed = new Set(
    query.stdout
      .split('\n')
      .filter((line) => line.endsWith(' install ok installed'))
      .map((line) => line.split(' ')[0]),
  );
  return packages.filter((pkg) => !installed.has(pkg));
}

function run(command, args) {
  const result = spawnSync(command, args, {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
  return result.status === 0;
}

/**
 * Makes sure every listed package is installed. Returns true when they all are (installing the
 * missing ones as root); otherwise prints what is missing and the command to run, and returns false.
 */
export function ensureAptPackages(log = console.error) {
  const missing = missingPackages();
  if (missing === null) {
    log(
      `apt-packages: no dpkg on this machine; the tests need these Debian packages (or the same ` +
        `programs on PATH): ${listedPackages().join(' ')}`,
    );
    return false;
  }
  if (missing.length === 0) return true;
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasAptGet = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (asRoot && hasAptGet) {
    log(`apt-packages: installing ${missing.join(' ')}`);
    if (run('apt-get', ['update', '-qq']) && run('apt-get', ['install', '-y', '-qq', ...missing])) {
      const still = missingPackages(missing) ?? missing;
      if (still.length === 0) return true;
      log(`apt-packages: still missing after apt-get: ${still.join(' ')}`);
      return false;
    }
    log('apt-packages: apt-get failed (see above)');
    return false;
  }
  log(
    `The tests need Debian packages that are not installed: ${missing.join(' ')}\n` +
      `Install them, then run the tests again:\n\n` +
      `  sudo apt-get install -y ${missing.join(' ')}\n`,
  );
  return false;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exit(ensureAptPackages() ? 0 : 1);
}
