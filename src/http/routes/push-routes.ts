import type { IncomingMessage } from 'node:http';
import { decodeCursor, encodeCursor, type CursorPosition } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import { isPushId, type PushId } from '../../core/push-id.js';
import { ListenStream } from '../../transports/listen-stream.js';
import { LongPollConnection } from '../../transports/long-poll.js';
import { SseWriter } from '../../transports/sse.js';
import {
  newListenStormState,
  type ListenStormGuard,
  type ListenStormState,
} from '../abuse-limits.js';
import type { CorsPolicy } from '../cors.js';
import { asObject, parseJson, readBody } from '../json-body.js';
import type { ListenTokens } from '../listen-tokens.js';
import type { PushService } from '../push-service.js';
import { sendNoContent } from '../respond.js';
import type { Router } from '../router.js';

/** Most push IDs one listen may carry (SPEC §4). */
export const MAX_PUSH_IDS_PER_LISTEN = 100;
export const MAX_LISTEN_BODY_BYTES = 16 * 1024;

export interface ListenRequest {
  readonly pushIds: PushId[];
  readonly from: CursorPosition | null;
}

/**
 * Validates a listen body; shared by every transport so they accept exactly the same input.
 * With `tokens` (a secret is configured), this is also the one place where listen tokens are
 * checked: a refused listen throws 403 `forbidden` before anything touches the node's state.
 */
export function parseListenRequest(
  value: unknown,
  tokens: ListenTokens | null = null,
): ListenRequest {
  const body = asObject(value, 'The listen body');
  const { pushIds, cursor, listenTokens } = body;
  if (!Array.isArray(pushIds) || pushIds.length === 0) {
    throw new EpushError('invalid_body', '"pushIds" must be a non-empty array of push IDs.');
  }
  if (pushIds.length > MAX_PUSH_IDS_PER_LISTEN) {
    throw new EpushError(
      'too_many_push_ids',
      `A listen carries at most ${MAX_PUSH_IDS_PER_LISTEN} push IDs (got ${pushIds.length}).`,
    );
  }
  const unique = new Set<PushId>();
  for (const [index, pushId] of pushIds.entries()) {
    if (!isPushId(pushId)) {
      // Never echo the value itself: it may be huge or nested thousands deep.
      const shown = typeof pushId === 'string' ? `"${pushId.slice(0, 80)}"` : `a ${typeof pushId}`;
      throw new EpushError('invalid_push_id', `pushIds[${index}] (${shown}) is not a push ID.`);
    }
    unique.add(pushId);
  }
  if (listenTokens !== undefined && listenTokens !== null) {
    if (
      !Array.isArray(listenTokens) ||
      listenTokens.length !== pushIds.length ||
      !listenTokens.every((token) => token === null || typeof token === 'string')
    ) {
      throw new EpushError(
        'invalid_body',
        '"listenTokens" must be an array of strings (or nulls), one per entry of "pushIds".',
      );
    }
  }
  let from: CursorPosition | null = null;
  if (cursor !== undefined && cursor !== null) {
    from = typeof cursor === 'string' ? decodeCursor(cursor) : null;
    if (from === null) {
      throw new EpushError(
        'invalid_cursor',
        '"cursor" must be null or a cursor this service handed out.',
      );
    }
  }
  const ids = [...unique];
  if (tokens !== null) tokens.check(ids, tokensFor(ids, pushIds, listenTokens));
  return { pushIds: ids, from };
}

/** `{"pushIds":["<one push ID>"],"cursor":<cursor or null>}`, exactly as the clients send it. */
const PLAIN_LISTEN_BODY =
  /^\{"pushIds":\["([A-Za-z0-9_-]{16,64})"\],"cursor":(?:null|"([a-z0-9]{1,24})-([0-9a-z]{1,11})")\}$/;

/**
 * The common listen body (one push ID, a cursor or null, no tokens) read without JSON.parse: the
 * accept loop's re-poll path. Null for anything else, which then takes parseListenRequest; for
 * what it accepts, the result is the one parseListenRequest gives.
 */
export function parsePlainListenBody(body: Buffer): ListenRequest | null {
  if (body.length > 160) return null;
  const match = PLAIN_LISTEN_BODY.exec(body.toString('latin1'));
  if (match === null) return null;
  const pushId = match[1] as PushId;
  const epoch = match[2];
  if (epoch === undefined) return { pushIds: [pushId], from: null };
  const seq = parseInt(match[3] ?? '', 36);
  if (!Number.isSafeInteger(seq)) return null;
  return { pushIds: [pushId], from: { epoch, seq } };
}

/** The token of each unique push ID (the first one given for a repeated push ID), or null. */
function tokensFor(
  ids: readonly PushId[],
  pushIds: readonly unknown[],
  listenTokens: unknown,
): (string | null)[] | null {
  if (!Array.isArray(listenTokens)) return null;
  const byId = new Map<unknown, string>();
  for (const [index, token] of (listenTokens as (string | null)[]).entries()) {
    const id = pushIds[index];
    if (token !== null && token !== '' && !byId.has(id)) byId.set(id, token);
  }
  return ids.map((id) => byId.get(id) ?? null);
}

/** A page outside `--cors-origins` may not listen (its browser would hide the answer anyway). */
function refuseForeignOrigin(cors: CorsPolicy, req: IncomingMessage): void {
  if (!cors.allows(req)) {
    throw new EpushError('forbidden_origin', 'This origin may not listen here (--cors-origins).');
  }
}

/** The browser protocol of SPEC §4 (long-poll; no API key, push IDs are the capability). */
export function registerPushRoutes(
  router: Router,
  service: PushService,
  cors: CorsPolicy,
  streamBudgetBytes: number,
  tokens: ListenTokens | null = null,
  storm: ListenStormGuard | null = null,
): void {
  /** Listen-storm state per connection (the accept loop keeps its own on its connections). */
  const stormStates = new WeakMap<object, ListenStormState>();
  router.on('OPTIONS', '/push/listen', ({ req, res }) => {
    sendNoContent(res, cors.preflightHeaders(req));
  });

  router.on('POST', '/push/listen', async ({ req, res }) => {
    refuseForeignOrigin(cors, req);
    const request = parseListenRequest(
      parseJson(await readBody(req, MAX_LISTEN_BODY_BYTES)),
      tokens,
    );
    let from = request.from;
    if (storm !== null) {
      const { socket } = req;
      let state = stormStates.get(socket);
      if (state === undefined) stormStates.set(socket, (state = newListenStormState()));
      const delayMs = storm.delayFor(state, Date.now(), socket, from?.seq ?? -1);
      if (delayMs > 0) {
        // Served late, with "from now" pinned to arrival: nothing published meanwhile is lost.
        from ??= decodeCursor(await service.headCursor());
        await new Promise<void>((resolve) => {
          setTimeout(resolve, delayMs).unref();
        });
        if (socket.destroyed) return;
      }
    }
    const connection = new LongPollConnection(
      res,
      {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        ...cors.headersFor(req),
      },
      service.connections,
    );
    await service.listen(request.pushIds, from, connection);
  });

  router.on('OPTIONS', '/push/sse', ({ req, res }) => {
    sendNoContent(res, cors.preflightHeaders(req));
  });

  // SPEC §4: `?pushIds=a,b&cursor=…`; a reconnecting EventSource sends `Last-Event-ID`, which is
  // newer than the cursor in the URL it was opened with.
  router.on('GET', '/push/sse', async ({ req, res, url }) => {
    refuseForeignOrigin(cors, req);
    const lastEventId = req.headers['last-event-id'];
    const cursor =
      typeof lastEventId === 'string' && lastEventId !== ''
        ? lastEventId
        : url.searchParams.get('cursor');
    // An empty entry (`a,,b`, a trailing comma) is refused like any other bad push ID.
    const rawPushIds = url.searchParams.get('pushIds') ?? '';
    const pushIds = rawPushIds === '' ? [] : rawPushIds.split(',');
    // `listenTokens=t1,t2`, parallel to `pushIds` (an empty entry: no token for that push ID).
    const listenTokens = url.searchParams.get('listenTokens')?.split(',');
    const request = parseListenRequest(
      { pushIds, cursor: cursor === '' ? null : cursor, listenTokens },
      tokens,
    );
    const notReady = service.notReadyReason();
    if (notReady !== null) throw new EpushError('not_ready', notReady, { 'retry-after': '1' });
    // "From now" is pinned to the head at arrival, so the first event can carry a cursor.
    const start = request.from
      ? encodeCursor(request.from.epoch, request.from.seq)
      : await service.headCursor();
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx buffers proxied responses unless told not to.
      'x-accel-buffering': 'no',
      ...cors.headersFor(req),
    });
    // `retry` is EventSource's reconnect delay. The first event is sent at once, an empty answer
    // with the starting cursor: the client learns the stream flows (a buffering proxy would
    // hold it back, and the client then falls back to long-poll).
    res.write('retry: 1000\n\n');
    const writer = new SseWriter(res);
    writer.write(JSON.stringify({ notifications: [], cursor: start, expired: [] }), start);
    const { connections } = service;
    connections.opened('sse');
    connections.trackQueue(writer);
    const stream = new ListenStream(
      'sse',
      writer,
      (ids, from, connection) => service.listen(ids, from, connection),
      request.pushIds,
      streamBudgetBytes,
      connections,
    );
    res.once('close', () => {
      connections.closed('sse');
      connections.untrackQueue(writer);
      stream.stop();
    });
    stream.start(decodeCursor(start));
  });
}
