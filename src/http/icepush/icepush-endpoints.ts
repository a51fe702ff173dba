import type { IncomingMessage, ServerResponse } from 'node:http';
import { EpushError } from '../../core/errors.js';
import { isGroupName, type GroupName } from '../../core/group-name.js';
import { isPushId, type PushId } from '../../core/push-id.js';
import { requireGroup, requireWrite, type ApiKeyAuth, type KeyScope } from '../auth.js';
import type { PushService } from '../push-service.js';
import { IcepushListen, type IcepushListenOptions } from './icepush-listen.js';
import { browserCookie, NO_CACHE_HEADERS } from './icepush-reply.js';
import { BROWSER_ID_NAME, IcepushRequest } from './icepush-request.js';

export interface IcepushOptions extends IcepushListenOptions {
  /** `--icepush-open-api`: group changes and notifications without an API key, as the original. */
  readonly openApi: boolean;
  /** Largest payload a notification may carry, serialized (`--max-payload-kb`). */
  readonly maxPayloadBytes: number;
}

type Endpoint =
  'listen' | 'create-push-id' | 'add-group-member' | 'remove-group-member' | 'notify' | 'code';

/** The path suffixes of ICEpush's endpoints (any prefix: every web context of the original). */
const SUFFIXES: readonly [string, Endpoint][] = [
  ['listen.icepush', 'listen'],
  ['create-push-id.icepush', 'create-push-id'],
  ['add-group-member.icepush', 'add-group-member'],
  ['remove-group-member.icepush', 'remove-group-member'],
  ['notify.icepush', 'notify'],
  ['code.icepush', 'code'],
  ['code.min.icepush', 'code'],
];

/**
 * ICEpush 4.x's browser protocol (`--icepush`), so ICEpush and ICEfaces pages work against an
 * epush cluster with their own client: the endpoints, their parameters and cookies, and the XML
 * answers of `listen.icepush` (icepush-listen.ts). ICEpush push IDs are epush push IDs: the
 * application API sees and changes the same groups.
 */
export class IcepushEndpoints {
  /** The newest listen of each browser on this node: tells its duplicates from other browsers. */
  private readonly newest = new Map<PushId, string>();

  constructor(
    private readonly service: PushService,
    private readonly auth: ApiKeyAuth,
    private readonly options: IcepushOptions,
  ) {}

  /** Whether a path is one of ICEpush's endpoints. */
  static owns(path: string): boolean {
    return endpointOf(path) !== null;
  }

  async serve(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const endpoint = endpointOf(url.pathname);
    if (endpoint === null) throw new EpushError('not_found', `There is no ${url.pathname} here.`);
    if (endpoint === 'code') {
      throw new EpushError(
        'not_found',
        "epush speaks ICEpush's protocol but does not serve its JavaScript client: load it from your ICEpush or ICEfaces application, as before.",
      );
    }
    if (req.method !== 'GET' && req.method !== 'POST' && req.method !== 'HEAD') {
      throw new EpushError(
        'method_not_allowed',
        `${req.method ?? ''} is not allowed on ${url.pathname}; use GET, POST.`,
        {
          allow: 'GET, POST',
        },
      );
    }
    const request = await IcepushRequest.read(req, url);
    switch (endpoint) {
      case 'listen':
        await new IcepushListen(this.service, request, res, this.options, this.newest).run();
        return;
      case 'create-push-id':
        await this.createPushId(request, res);
        return;
      case 'add-group-member': {
        const scope = this.authorize(req, request);
        const group = groupOf(request, scope);
        await this.service.addMember(group, pushIdOf(request));
        sendText(res, '');
        return;
      }
      case 'remove-group-member': {
        const scope = this.authorize(req, request);
        const group = groupOf(request, scope);
        await this.service.removeMember(group, pushIdOf(request));
        sendText(res, '');
        return;
      }
      case 'notify':
        await this.notify(req, request, res);
        return;
    }
  }

  /** A push ID as text; a browser without an ID gets one in its cookie with it. */
  private async createPushId(request: IcepushRequest, res: ServerResponse): Promise<void> {
    const offered = request.cookie(BROWSER_ID_NAME) ?? request.value(BROWSER_ID_NAME);
    const needsBrowser = offered === null || !isPushId(offered);
    const [pushId, browserId] = await this.service.createPushIds(needsBrowser ? 2 : 1);
    const headers: Record<string, string | string[]> = {};
    if (needsBrowser && browserId !== undefined) headers['set-cookie'] = [browserCookie(browserId)];
    sendText(res, pushId ?? '', headers);
  }

  /**
   * `group`, an optional `payload` (text; also as ICEpush's `option=payload=…`). The original's
   * scheduling options (`delay`, `at`, `duration`) are not kept: the notification goes at once.
   */
  private async notify(
    req: IncomingMessage,
    request: IcepushRequest,
    res: ServerResponse,
  ): Promise<void> {
    const scope = this.authorize(req, request);
    const group = groupOf(request, scope);
    let payload = request.value('payload');
    for (const option of request.all('option')) {
      if (option.startsWith('payload=')) payload = option.slice('payload='.length);
    }
    const payloadJson = payload === null ? 'null' : JSON.stringify(payload);
    if (Buffer.byteLength(payloadJson) > this.options.maxPayloadBytes) {
      throw new EpushError(
        'payload_too_large',
        `The payload is larger than ${this.options.maxPayloadBytes} bytes once serialized.`,
      );
    }
    const id = await this.service.notifyGroup(group, payloadJson);
    sendText(res, '', { 'x-epush-notification-id': id });
  }

  /** An API key, as a bearer header or the `ice.push.apiKey` parameter, unless the API is open. */
  private authorize(req: IncomingMessage, request: IcepushRequest): KeyScope | null {
    if (this.options.openApi) return null;
    const key = request.value('ice.push.apiKey');
    if (req.headers.authorization === undefined && key !== null) {
      const scope = this.auth.scopeOf(key);
      if (scope === null) {
        throw new EpushError('unauthorized', 'The API key (ice.push.apiKey) is not valid.', {
          'www-authenticate': 'Bearer realm="epush"',
        });
      }
      return scope;
    }
    return this.auth.check(req);
  }
}

function endpointOf(path: string): Endpoint | null {
  for (const [suffix, endpoint] of SUFFIXES) if (path.endsWith(suffix)) return endpoint;
  return null;
}

function groupOf(request: IcepushRequest, scope: KeyScope | null): GroupName {
  const group = request.value('group');
  if (!isGroupName(group)) {
    throw new EpushError(
      'invalid_group_name',
      'The parameter "group" must be 1-200 characters of [A-Za-z0-9._:~-].',
    );
  }
  if (scope !== null) {
    requireWrite(scope);
    requireGroup(scope, group);
  }
  return group;
}

function pushIdOf(request: IcepushRequest): PushId {
  const id = request.value('id');
  if (!isPushId(id)) {
    throw new EpushError(
      'invalid_push_id',
      'The parameter "id" must be a push ID of this cluster.',
    );
  }
  return id;
}

function sendText(
  res: ServerResponse,
  body: string,
  extra: Record<string, string | string[]> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, {
    ...NO_CACHE_HEADERS,
    ...extra,
    'content-type': 'text/plain; charset=UTF-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
