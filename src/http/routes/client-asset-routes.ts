import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../config/package-root.js';
import { EpushError } from '../../core/errors.js';
import type { Router } from '../router.js';

interface Asset {
  readonly body: Buffer;
  readonly etag: string;
  readonly contentType: string;
}

const ASSETS: Record<string, { file: string; contentType: string }> = {
  '/epush.js': { file: 'epush.js', contentType: 'text/javascript; charset=utf-8' },
  '/epush.mjs': { file: 'epush.mjs', contentType: 'text/javascript; charset=utf-8' },
  '/epush.d.ts': { file: 'epush.d.ts', contentType: 'text/plain; charset=utf-8' },
};

function load(file: string, contentType: string): Asset | null {
  const path = join(packageRoot(), 'client', 'dist', file);
  if (!existsSync(path)) return null;
  const body = readFileSync(path);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, etag, contentType };
}

/**
 * The browser client (SPEC §4): read once at start-up, served with a strong ETag so browsers
 * revalidate cheaply (304) and pick up a new version within five minutes of a deploy.
 */
export function registerClientAssetRoutes(router: Router): void {
  for (const [path, { file, contentType }] of Object.entries(ASSETS)) {
    const asset = load(file, contentType);
    router.on('GET', path, ({ req, res }) => {
      if (!asset) {
        throw new EpushError(
          'not_found',
          `${path} is not built; run "npm run build" in the epush package.`,
        );
      }
      const headers = {
        'content-type': asset.contentType,
        'cache-control': 'public, max-age=300, must-revalidate',
        etag: asset.etag,
        'access-control-allow-origin': '*',
      };
      if (req.headers['if-none-match'] === asset.etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': asset.body.length });
      res.end(req.method === 'HEAD' ? undefined : asset.body);
    });
  }
}
