import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import {
  ADMIN_COOKIE,
  ADMIN_SESSION_SECONDS,
  AdminSessions,
  cookieValue,
} from '../admin-session.js';
import { DASHBOARD_CSS, dashboardPage, loginPage } from '../../admin/dashboard-page.js';
import { packageRoot } from '../../config/package-root.js';
import { EpushError } from '../../core/errors.js';
import { isLoopback, KEYLESS, requireUnscoped, type ApiKeyAuth, type KeyScope } from '../auth.js';
import { readBody } from '../json-body.js';
import { ADMIN_GROUP, ADMIN_PERIOD_SECONDS, type PushService } from '../push-service.js';
import { sendJson, type Headers } from '../respond.js';
import type { RouteContext, Router } from '../router.js';

/** The login form's body is one short field. */
const MAX_LOGIN_BODY_BYTES = 4096;

/** What every page answer carries: no framing, no caching, no referrer, no inline code. */
const PAGE_HEADERS: Headers = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
};

interface Asset {
  readonly body: Buffer;
  readonly etag: string;
  readonly contentType: string;
}

/**
 * The dashboard's script, built from src/admin/browser/dashboard.ts by `npm run build` (like the
 * browser client); null when the package was not built.
 */
function builtDashboardScript(): Buffer | null {
  const path = join(packageRoot(), 'dist', 'admin', 'dashboard.js');
  return existsSync(path) ? readFileSync(path) : null;
}

function asset(text: string | Buffer, contentType: string): Asset {
  const body = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, etag, contentType };
}

/**
 * A browser navigating (its Accept names text/html) gets pages; anything else (curl, scripts,
 * `Accept: application/json`, no Accept) gets the JSON error shape of docs/protocol.md, as every other
 * error answer of epush.
 */
function wantsHtml(req: IncomingMessage): boolean {
  return /\btext\/html\b|\bapplication\/xhtml\+xml\b/i.test(req.headers.accept ?? '');
}

/** Whether the browser reached us over TLS (directly, or through a proxy that says so). */
function overTls(req: IncomingMessage): boolean {
  if ((req.socket as { encrypted?: boolean }).encrypted === true) return true;
  const forwarded = req.headers['x-forwarded-proto'];
  const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
  return first?.toLowerCase() === 'https';
}

function sendPage(res: ServerResponse, status: number, html: string, headers: Headers = {}): void {
  if (res.headersSent || res.destroyed) return;
  const body = Buffer.from(html, 'utf8');
  res.writeHead(status, { ...PAGE_HEADERS, ...headers, 'content-length': body.length });
  res.end(body);
}

function unauthorized(message: string): EpushError {
  return new EpushError('unauthorized', message, { 'www-authenticate': 'Bearer realm="epush"' });
}

/**
 * The `/admin` dashboard (docs/protocol.md), under the handler's base path:
 *
 * - `GET /admin`: the dashboard with a key (`Authorization: Bearer`, or the session cookie),
 *   else 401 with the key form (the JSON error for non-browsers).
 * - `POST /admin` (form `key=…`): 303 back to the page with a signed session cookie.
 * - `POST /admin/logout`: clears the cookie.
 * - `POST /admin/session`: mints a push ID in the reserved group `epush.admin` and returns the
 *   current figures; every node then publishes its figures to that group (AdminFeed).
 * - `GET /admin/dashboard.js`, `GET /admin/dashboard.css`: the page's script and style.
 *
 * The dashboard shows the whole cluster, so a key limited by `groups=` is refused (403); a
 * read-only key is enough. Keyless (`--insecure-dev` without keys) it is open to loopback peers.
 */
export function registerAdminRoutes(
  router: Router,
  service: PushService,
  auth: ApiKeyAuth,
  basePath: string,
): void {
  const sessions = new AdminSessions(auth.keys);
  const cookiePath = `${basePath}/admin`;
  const page = `${basePath}/admin`;

  const cookie = (req: IncomingMessage, value: string, maxAge: number): string =>
    `${ADMIN_COOKIE}=${value}; Path=${cookiePath}; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${overTls(req) ? '; Secure' : ''}`;

  /** The request's scope, from its bearer key or session cookie; throws 401 / 403. */
  const authenticate = (req: IncomingMessage): KeyScope => {
    if (auth.keyless) {
      if (isLoopback(req.socket.remoteAddress)) return KEYLESS;
      throw unauthorized(
        'This node has no API key (--insecure-dev): its dashboard is served to loopback peers only.',
      );
    }
    let scope: KeyScope | null;
    const header = req.headers.authorization;
    if (header !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      scope = match ? auth.scopeOf(match[1] ?? '') : null;
      if (scope === null) throw unauthorized('The API key is not valid.');
    } else {
      const value = cookieValue(req.headers.cookie, ADMIN_COOKIE);
      if (value === null) {
        throw unauthorized(
          'The dashboard needs an API key: send "Authorization: Bearer <key>" or log in with the form.',
        );
      }
      scope = sessions.verify(value);
      if (scope === null) {
        throw unauthorized('The dashboard session has expired or is not valid; log in again.');
      }
    }
    requireUnscoped(scope);
    return scope;
  };

  /** Refusals as the key form for browsers, as the JSON error shape for everything else. */
  const refuse = (req: IncomingMessage, res: ServerResponse, error: unknown): void => {
    if (!(error instanceof EpushError) || !wantsHtml(req)) throw error;
    sendPage(res, error.status, loginPage(basePath, error.message), error.headers);
  };

  router.on('GET', '/admin', ({ req, res }) => {
    try {
      authenticate(req);
    } catch (error) {
      refuse(req, res, error);
      return;
    }
    sendPage(res, 200, dashboardPage(basePath, ADMIN_PERIOD_SECONDS));
  });

  router.on('POST', '/admin', async ({ req, res }: RouteContext) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type)) {
      throw new EpushError(
        'unsupported_media_type',
        'The login form is sent as application/x-www-form-urlencoded with a "key" field.',
      );
    }
    const form = new URLSearchParams((await readBody(req, MAX_LOGIN_BODY_BYTES)).toString('utf8'));
    try {
      if (auth.keyless) {
        authenticate(req);
        redirect(res, page, {});
        return;
      }
      const key = (form.get('key') ?? '').trim();
      if (key === '') throw unauthorized('Enter an API key.');
      const scope = auth.scopeOf(key);
      if (scope === null) throw unauthorized('That API key is not valid.');
      requireUnscoped(scope);
      redirect(res, page, {
        'set-cookie': cookie(req, sessions.issue(key), ADMIN_SESSION_SECONDS),
      });
    } catch (error) {
      refuse(req, res, error);
    }
  });

  router.on('POST', '/admin/logout', ({ req, res }) => {
    redirect(res, page, { 'set-cookie': cookie(req, '', 0) });
  });

  router.on('POST', '/admin/session', async ({ req, res }) => {
    authenticate(req);
    // A cross-site form cannot set this header nor a JSON content type (on top of SameSite).
    const json = /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '');
    if (req.headers['x-epush-admin'] !== '1' && !json) {
      throw new EpushError(
        'forbidden',
        'A dashboard session is started by the dashboard page ("X-Epush-Admin: 1").',
      );
    }
    const [pushId] = await service.createPushIds(1);
    if (pushId === undefined) throw new Error('no push ID minted');
    await service.addMember(ADMIN_GROUP, pushId);
    const snapshot = await service.adminSnapshot();
    sendJson(res, 201, JSON.stringify({ pushId, snapshot }));
  });

  const script = builtDashboardScript();
  const assets: Record<string, Asset | null> = {
    '/admin/dashboard.js': script && asset(script, 'text/javascript; charset=utf-8'),
    '/admin/dashboard.css': asset(DASHBOARD_CSS, 'text/css; charset=utf-8'),
  };
  for (const [path, built] of Object.entries(assets)) {
    router.on('GET', path, ({ req, res }) => {
      if (built === null) {
        throw new EpushError(
          'not_found',
          `${path} is not built; run "npm run build" in the epush package.`,
        );
      }
      const { body, etag, contentType } = built;
      const headers = {
        'content-type': contentType,
        'cache-control': 'no-cache',
        etag,
        'x-content-type-options': 'nosniff',
      };
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }
}

function redirect(res: ServerResponse, location: string, headers: Headers): void {
  res.writeHead(303, { location, 'cache-control': 'no-store', 'content-length': 0, ...headers });
  res.end();
}
