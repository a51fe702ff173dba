#!/usr/bin/env node
// Builds the browser client into client/dist:
//   epush.js     classic script (IIFE), global `EPush`  — served at /epush.js
//   epush.mjs    ES module                              — served at /epush.mjs
//   epush-hub.js the hub frame's script (IIFE)          — served at /epush-hub.js
//   types/       declarations (tsc --emitDeclarationOnly), with epush.d.ts / epush.d.mts entry points
// Usage: node client/build.mjs   (from anywhere; paths are relative to this file)
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
const require = createRequire(import.meta.url);
const { version, license } = JSON.parse(readFileSync(join(here, '..', 'package.json'), 'utf8'));

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });

const common = {
  entryPoints: [join(here, 'src', 'index.ts')],
  bundle: true,
  platform: 'browser',
  // Every browser with fetch + AbortController; BroadcastChannel and Web Locks are optional.
  target: ['es2020'],
  tsconfig: join(here, 'tsconfig.json'),
  banner: { js: `/* epush browser client ${version} (${license}) */` },
  legalComments: 'none',
  logLevel: 'warning',
};

await Promise.all([
  build({ ...common, format: 'iife', globalName: 'EPush', outfile: join(dist, 'epush.js') }),
  build({ ...common, format: 'esm', outfile: join(dist, 'epush.mjs') }),
  build({
    ...common,
    entryPoints: [join(here, 'src', 'hub-main.ts')],
    format: 'iife',
    outfile: join(dist, 'epush-hub.js'),
  }),
]);

const tsc = spawnSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(here, 'tsconfig.json')],
  { stdio: 'inherit' },
);
if (tsc.status !== 0) {
  console.error('client/build.mjs: declaration build failed');
  process.exit(tsc.status ?? 1);
}

// Entry points for the declarations: the ES module's, and the classic script's global.
await writeFile(join(dist, 'epush.d.mts'), "export * from './types/index.js';\n");
await writeFile(
  join(dist, 'epush.d.ts'),
  [
    "import type * as EPushModule from './types/index.js';",
    '',
    'declare global {',
    '  /** The epush browser client, from the classic script `/epush.js`. */',
    '  const EPush: typeof EPushModule;',
    '}',
    '',
    "export * from './types/index.js';",
    '',
  ].join('\n'),
);
console.log('client/build.mjs: built client/dist (epush.js, epush.mjs, epush-hub.js, types)');
