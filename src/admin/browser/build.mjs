#!/usr/bin/env node
// Builds the /admin dashboard's script (dashboard.ts, browser TypeScript) into
// dist/admin/dashboard.js: one classic script, served by the admin routes at
// GET <basePath>/admin/dashboard.js. Run by `npm run build`; paths are relative to this file.
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', '..', '..', 'dist', 'admin', 'dashboard.js');
await mkdir(dirname(out), { recursive: true });
await build({
  entryPoints: [join(here, 'dashboard.ts')],
  bundle: true,
  platform: 'browser',
  format: 'iife',
  target: ['es2020'],
  tsconfig: join(here, 'tsconfig.json'),
  legalComments: 'none',
  logLevel: 'warning',
  outfile: out,
});
