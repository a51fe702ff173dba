import { parseGroupName as groupParam, parsePushId as pushIdParam } from '../api-input.js';
import { requireGroup, type ApiKeyAuth, type KeyScope } from '../auth.js';
import type { PresenceService } from '../push-service.js';
import { sendJson } from '../respond.js';
import type { RouteContext, Router } from '../router.js';

/**
 * Presence reads of the application API (docs/protocol.md, "Presence"): who is listening.
 * Every call needs an API key; a group-scoped key reads only its groups.
 */
export function registerPresenceRoutes(
  router: Router,
  presence: PresenceService,
  auth: ApiKeyAuth,
): void {
  const guarded =
    (
      access: (scope: KeyScope, params: readonly string[]) => void,
      handler: (context: RouteContext) => Promise<void>,
    ) =>
    (context: RouteContext): Promise<void> => {
      access(auth.check(context.req), context.params);
      return handler(context);
    };

  router.on(
    'GET',
    '/api/push-ids/:pushId',
    guarded(
      () => undefined,
      async ({ res, params }) => {
        const answer = await presence.pushIdPresence(pushIdParam(params[0]));
        sendJson(res, 200, JSON.stringify(answer));
      },
    ),
  );

  router.on(
    'GET',
    '/api/groups/:group/presence',
    guarded(
      (scope, params) => {
        requireGroup(scope, groupParam(params[0]));
      },
      async ({ res, params }) => {
        const answer = await presence.groupPresence(groupParam(params[0]));
        sendJson(res, 200, JSON.stringify(answer));
      },
    ),
  );
}
