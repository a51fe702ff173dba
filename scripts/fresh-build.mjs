// The tests load the built package (the `epush` exports, the browser client served from
// client/dist): `npm run build` runs first when an output is missing or older than a source.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** What `npm run build` reads. */
const INPUTS = [
  'src',
  'client/src',
  'client/build.mjs',
  'client/tsconfig.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
];
/** What it writes, one file per output tree (each is rewritten on every build). */
const OUTPUTS = ['dist/src/index.js', 'dist/src/cli/main.js', 'client/dist/epush.js'];

function newestMtime(path) {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = stat.mtimeMs; // a deleted file shows only as its folder's change
  for (const entry of readdirSync(path)) {
    // Tests beside the sources are not built.
    if (!entry.endsWith('.test.ts')) newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}

/** Why a build is needed, or null when every output is newer than every input. */
export function staleBuildReason() {
  const missing = OUTPUTS.filter((file) => !existsSync(join(ROOT, file)));
  if (missing.length > 0) return `${missing.join(', ')} missing`;
  const built = Math.min(...OUTPUTS.map((file) => statSync(join(ROOT, file)).mtimeMs));
  const changed = INPUTS.filter(
    (input) => existsSync(join(ROOT, input)) && newestMtime(join(ROOT, input)) > built,
  );
  return changed.length > 0 ? `${changed.join(', ')} changed since the last build` : null;
}

/** Runs `npm run build` when the build is stale; false when the build failed. */
export function ensureFreshBuild(log = console.error) {
  const reason = staleBuildReason();
  if (reason === null) return true;
  log(`run-tests: npm run build (${reason})`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  return spawnSync(npm, ['run', '--silent', 'build'], { cwd: ROOT, stdio: 'inherit' }).status === 0;
}
