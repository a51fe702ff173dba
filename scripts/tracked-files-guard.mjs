// A test run must leave the checkout as it found it: tests write only to temp or gitignored
// places. This takes the checkout's state before the run and names what the run changed.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** `git status --porcelain` lines (null outside a git checkout or without git). */
function porcelain() {
  const result = spawnSync('git', ['status', '--porcelain', '--untracked-files=all'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (result.error || result.status !== 0) return null;
  return result.stdout.split('\n').filter((line) => line !== '');
}

function digest(path) {
  const full = join(ROOT, path);
  if (!existsSync(full) || statSync(full).isDirectory()) return 'absent';
  return createHash('sha256').update(readFileSync(full)).digest('hex');
}

/** Each dirty path with its status and content digest. */
function snapshot(lines) {
  const state = new Map();
  for (const line of lines) {
    const path = line.slice(3).replace(/^.* -> /, '');
    state.set(path, `${line.slice(0, 2)} ${digest(path)}`);
  }
  return state;
}

/**
 * Takes the checkout's state now; the returned function names every path whose git status or
 * content differs afterwards (empty when the run changed nothing). Null outside a git checkout.
 * Work in progress that was already dirty before the run does not count, unless the run changed it.
 */
export function watchCheckout() {
  const before = porcelain();
  if (before === null) return null;
  const was = snapshot(before);
  return () => {
    const now = snapshot(porcelain() ?? []);
    const changed = [];
    for (const [path, state] of now)
      if (was.get(path) !== state) changed.push(`${state.slice(0, 2)} ${path}`);
    for (const path of was.keys()) if (!now.has(path)) changed.push(`   ${path} (restored)`);
    return changed;
  };
}
