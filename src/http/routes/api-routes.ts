import { EpushError } from '../../core/errors.js';
import {
  parseIdempotencyKey,
  scopedIdempotencyKey,
  type NotifyOptions,
} from '../../core/idempotency.js';
import { MAX_PAYLOAD_BYTES } from '../../core/limits.js';
import {
  parseGroupName as groupParam,
  parsePushId as pushIdParam,
  parseListenTokenRequest,
  parsePushIdCount,
  serializePayload,
} from '../api-input.js';
import { requireGroup, requireWrite, type ApiKeyAuth, type KeyScope } from '../auth.js';
import { asObject, parseJson, readBody } from '../json-body.js';
import type { ListenTokens } from '../listen-tokens.js';
import { ADMIN_GROUP, type PushService } from '../push-service.js';
import { sendJson, sendNoContent } from '../respond.js';
import type { RouteContext, Router } from '../router.js';

/** Largest serialized payload a notification may carry (docs/protocol.md). */
/** The body around the payload may add a little; past this the body is refused unread. */
const BODY_OVERHEAD_BYTES = 4096;
const MAX_API_BODY_BYTES = MAX_PAYLOAD_BYTES + BODY_OVERHEAD_BYTES;

async function jsonObject(
  context: RouteContext,
  maxBodyBytes = MAX_API_BODY_BYTES,
): Promise<Record<string, unknown>> {
  return asObject(parseJson(await readBody(context.req, maxBodyBytes)), 'The request body');
}

/**
 * `{"payload": <json>}` (optional) → the payload serialized once, checked against
 * `maxPayloadBytes` (`--max-payload-kb`); the body limit is derived from it.
 */
async function payloadOf(context: RouteContext, maxPayloadBytes: number): Promise<string> {
  const body = await jsonObject(context, maxPayloadBytes + BODY_OVERHEAD_BYTES);
  for (const key of Object.keys(body)) {
    if (key !== 'payload')
      throw new EpushError(
        'invalid_body',
        `Unknown field "${key}"; a notify body has only "payload".`,
      );
  }
  return serializePayload(body.payload, maxPayloadBytes);
}

/**
 * The `Idempotency-Key` header (checked before the body is read), scoped to the API key that
 * sent it; keyless calls (`--insecure-dev`) share one scope.
 */
function notifyOptions(context: RouteContext, scope: KeyScope): NotifyOptions {
  const key = parseIdempotencyKey(context.req.headers['idempotency-key']);
  return key === undefined ? {} : { idempotencyKey: scopedIdempotencyKey(scope.keyId, key) };
}

/** The application API of docs/protocol.md: every call needs an API key. */
export function registerApiRoutes(
  router: Router,
  service: PushService,
  auth: ApiKeyAuth,
  listenTokens: ListenTokens | null = null,
  maxPayloadBytes = MAX_PAYLOAD_BYTES,
): void {
  /** Checks the key and its scope before the handler reads anything (a refused call changes nothing). */
  const guarded =
    (
      access: (scope: KeyScope, params: readonly string[]) => void,
      handler: (context: RouteContext, scope: KeyScope) => Promise<void>,
    ) =>
    (context: RouteContext): Promise<void> => {
      const scope = auth.check(context.req);
      access(scope, context.params);
      return handler(context, scope);
    };
  const write = (scope: KeyScope): void => {
    requireWrite(scope);
  };
  const read = (): void => {};
  const groupWrite = (scope: KeyScope, params: readonly string[]): void => {
    requireWrite(scope);
    const group = groupParam(params[0]);
    requireGroup(scope, group);
    // The dashboard trusts what arrives on its group: only the nodes publish there.
    if (group === ADMIN_GROUP) {
      throw new EpushError(
        'forbidden',
        `The group ${ADMIN_GROUP} is reserved for the /admin dashboard's live figures.`,
      );
    }
  };
  const groupRead = (scope: KeyScope, params: readonly string[]): void => {
    requireGroup(scope, groupParam(params[0]));
  };

  router.on(
    'POST',
    '/api/push-ids',
    guarded(write, async (context) => {
      const count = parsePushIdCount((await jsonObject(context)).count);
      const pushIds = await service.createPushIds(count);
      // With a secret, each push ID comes with its listen token (same order).
      const body =
        listenTokens === null
          ? { pushIds }
          : { pushIds, listenTokens: listenTokens.mint(pushIds).listenTokens };
      sendJson(context.res, 201, JSON.stringify(body));
    }),
  );

  router.on(
    'POST',
    '/api/listen-tokens',
    guarded(write, async (context) => {
      if (listenTokens === null) {
        throw new EpushError(
          'not_found',
          'Listen tokens are off on this server: start it with --listen-token-secret.',
        );
      }
      const { pushIds, ttlSeconds } = parseListenTokenRequest(await jsonObject(context));
      const minted = listenTokens.mint(pushIds, ttlSeconds ?? listenTokens.ttlSeconds);
      const expiresAt = new Date(minted.expires * 1000).toISOString();
      sendJson(context.res, 200, JSON.stringify({ listenTokens: minted.listenTokens, expiresAt }));
    }),
  );

  router.on(
    'PUT',
    '/api/groups/:group/members/:pushId',
    guarded(groupWrite, async ({ res, params }) => {
      await service.addMember(groupParam(params[0]), pushIdParam(params[1]));
      sendNoContent(res);
    }),
  );

  router.on(
    'DELETE',
    '/api/groups/:group/members/:pushId',
    guarded(groupWrite, async ({ res, params }) => {
      await service.removeMember(groupParam(params[0]), pushIdParam(params[1]));
      sendNoContent(res);
    }),
  );

  router.on(
    'GET',
    '/api/groups/:group/members',
    guarded(groupRead, async ({ res, params }) => {
      const members = await service.members(groupParam(params[0]));
      sendJson(res, 200, JSON.stringify({ members }));
    }),
  );

  router.on(
    'POST',
    '/api/groups/:group/notify',
    guarded(groupWrite, async (context, scope) => {
      const group = groupParam(context.params[0]);
      const options = notifyOptions(context, scope);
      const id = await service.notifyGroup(
        group,
        await payloadOf(context, maxPayloadBytes),
        options,
      );
      sendJson(context.res, 202, JSON.stringify({ id }));
    }),
  );

  router.on(
    'POST',
    '/api/push-ids/:pushId/notify',
    guarded(write, async (context, scope) => {
      const pushId = pushIdParam(context.params[0]);
      const options = notifyOptions(context, scope);
      const payloadJson = await payloadOf(context, maxPayloadBytes);
      const id = await service.notifyPushId(pushId, payloadJson, options);
      sendJson(context.res, 202, JSON.stringify({ id }));
    }),
  );

  router.on(
    'GET',
    '/api/cluster',
    guarded(read, async ({ res }) => {
      const nodes = await service.clusterNodes();
      sendJson(res, 200, JSON.stringify({ nodes }));
    }),
  );
}
