import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installed package's root (where `client/dist` and `demo/` are), found from this file
 * whether it runs from src/ (tsx) or dist/src/. Throws when there is none above it.
 */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'client'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the epush package root');
    dir = parent;
  }
}
