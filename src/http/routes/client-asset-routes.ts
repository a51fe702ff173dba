import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../config/package-root.js';
import { EpushError } from '../../core/errors.js';
import type { Router } from '../router.js';
import { hubPage } from './hub-page.js';

interface Asset {
  readonly body: Buffer;
  readonly etag: string;
  readonly contentType: string;
}

const ASSETS: Record<string, { file: string; contentType: string }> = {
  '/epush.js': { file: 'epush.js', contentType: 'text/javascript; charset=utf-8' },
  '/epush.mjs': { file: 'epush.mjs', contentType: 'text/javascript; charset=utf-8' },
  '/epush.d.ts': { file: 'epush.d.ts', contentType: 'text/plain; charset=utf-8' },
  '/epush-hub.js': { file: 'epush-hub.js', contentType: 'text/javascript; charset=utf-8' },
};

function etagOf(body: Buffer): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
}

function load(file: string, contentType: string): Asset | null {
  const path = join(packageRoot(), 'client', 'dist', file);
  if (!existsSync(path)) return null;
  const body = readFileSync(path);
  return { body, etag: etagOf(body), contentType };
}

/**
 * The browser client (docs/protocol.md): read once at start-up, served with a strong ETag so browsers
 * revalidate cheaply (304) and pick up a new version within five minutes of a deploy. Also the
 * hub page `/epush-hub.html` for `corsOrigins` (hub-page.ts) and its script `/epush-hub.js`.
 */
export function registerClientAssetRoutes(router: Router, corsOrigins: readonly string[]): void {
  const hub = hubPage(corsOrigins);
  const hubBody = Buffer.from(hub.html);
  const hubEtag = etagOf(hubBody);
  router.on('GET', '/epush-hub.html', ({ req, res }) => {
    const headers = {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': hub.csp,
      'cache-control': 'public, max-age=300, must-revalidate',
      etag: hubEtag,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    };
    if (req.headers['if-none-match'] === hubEtag) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': hubBody.length });
    res.end(req.method === 'HEAD' ? undefined : hubBody);
  });
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
