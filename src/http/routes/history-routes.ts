import type { HistoryPage, HistoryTarget } from '../../core/history.js';
import { decodeCursor, type CursorPosition } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import { parseGroupName, parsePushId } from '../api-input.js';
import { requireGroup, type ApiKeyAuth, type KeyScope } from '../auth.js';
import { sendJson } from '../respond.js';
import type { Router } from '../router.js';

/** What the history routes need of a node. */
export interface HistoryService {
  history(target: HistoryTarget, since: CursorPosition | null, limit: number): Promise<HistoryPage>;
}

export const DEFAULT_HISTORY_LIMIT = 100;
export const MAX_HISTORY_LIMIT = 1000;

/**
 * `GET /api/groups/{group}/notifications` and `GET /api/push-ids/{pushId}/notifications`
 * (docs/protocol.md, "History"): `since=<cursor>` and `limit=<1-1000>`, any API key (a key
 * limited to some groups reads only those groups, and only their notifications in a push ID's).
 */
export function registerHistoryRoutes(
  router: Router,
  service: HistoryService,
  auth: ApiKeyAuth,
): void {
  router.on('GET', '/api/groups/:group/notifications', async ({ req, res, params, url }) => {
    const scope = auth.check(req);
    const group = parseGroupName(params[0]);
    requireGroup(scope, group);
    const { since, limit } = parseHistoryQuery(url.searchParams);
    const page = await service.history({ kind: 'group', group }, since, limit);
    sendJson(res, 200, renderHistory(page, scope));
  });

  router.on('GET', '/api/push-ids/:pushId/notifications', async ({ req, res, params, url }) => {
    const scope = auth.check(req);
    const pushId = parsePushId(params[0]);
    const { since, limit } = parseHistoryQuery(url.searchParams);
    const page = await service.history({ kind: 'push-id', pushId }, since, limit);
    sendJson(res, 200, renderHistory(page, scope));
  });
}

export function parseHistoryQuery(query: URLSearchParams): {
  since: CursorPosition | null;
  limit: number;
} {
  const rawSince = query.get('since');
  let since: CursorPosition | null = null;
  if (rawSince !== null && rawSince !== '') {
    since = decodeCursor(rawSince);
    if (since === null) {
      throw new EpushError(
        'invalid_cursor',
        'since must be a cursor this cluster returned (from a history or a listen answer).',
      );
    }
  }
  const rawLimit = query.get('limit');
  let limit = DEFAULT_HISTORY_LIMIT;
  if (rawLimit !== null) {
    limit = /^\d{1,4}$/.test(rawLimit) ? Number(rawLimit) : 0;
    if (limit < 1 || limit > MAX_HISTORY_LIMIT) {
      throw new EpushError(
        'invalid_limit',
        `limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT} (default ${DEFAULT_HISTORY_LIMIT}).`,
      );
    }
  }
  return { since, limit };
}

/** The answer, with each payload written verbatim as it was stored. */
function renderHistory(page: HistoryPage, scope: KeyScope): string {
  const prefixes = scope.groupPrefixes;
  const visible = page.items.filter(
    ({ event }) =>
      prefixes === null || event.group === null || prefixes.some((p) => event.group?.startsWith(p)),
  );
  const notifications = visible.map(
    ({ event, pushId }) =>
      `{"id":${JSON.stringify(event.id)},"pushId":${JSON.stringify(pushId)},` +
      `"group":${JSON.stringify(event.group)},"payload":${event.payloadJson},` +
      `"publishedAt":"${new Date(event.publishedAt).toISOString()}"}`,
  );
  const reset = page.reset ? ',"reset":true' : '';
  return `{"notifications":[${notifications.join(',')}],"cursor":"${page.cursor}"${reset}}`;
}
