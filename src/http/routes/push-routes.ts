import { decodeCursor, encodeCursor, type CursorPosition } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import { isPushId, type PushId } from '../../core/push-id.js';
import { ListenStream } from '../../transports/listen-stream.js';
import { LongPollConnection } from '../../transports/long-poll.js';
import { SseWriter } from '../../transports/sse.js';
import type { CorsPolicy } from '../cors.js';
import { asObject, parseJson, readBody } from '../json-body.js';
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

/** Validates a listen body; shared by every transport so they accept exactly the same input. */
export function parseListenRequest(value: unknown): ListenRequest {
  const body = asObject(value, 'The listen body');
  const { pushIds, cursor } = body;
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
  return { pushIds: [...unique], from };
}

/** The browser protocol of SPEC §4 (long-poll; no API key, push IDs are the capability). */
export function registerPushRoutes(
  router: Router,
  service: PushService,
  cors: CorsPolicy,
  streamBudgetBytes: number,
): void {
  router.on('OPTIONS', '/push/listen', ({ req, res }) => {
    sendNoContent(res, cors.preflightHeaders(req));
  });

  router.on('POST', '/push/listen', async ({ req, res }) => {
    const request = parseListenRequest(parseJson(await readBody(req, MAX_LISTEN_BODY_BYTES)));
    const connection = new LongPollConnection(
      res,
      {
        'content-type': 'application/json; charset=utf-8',
        'cache-control': 'no-store',
        ...cors.headersFor(req),
      },
      service.connections,
    );
    await service.listen(request.pushIds, request.from, connection);
  });

  router.on('OPTIONS', '/push/sse', ({ req, res }) => {
    sendNoContent(res, cors.preflightHeaders(req));
  });

  // SPEC §4: `?pushIds=a,b&cursor=…`; a reconnecting EventSource sends `Last-Event-ID`, which is
  // newer than the cursor in the URL it was opened with.
  router.on('GET', '/push/sse', async ({ req, res, url }) => {
    const lastEventId = req.headers['last-event-id'];
    const cursor =
      typeof lastEventId === 'string' && lastEventId !== ''
        ? lastEventId
        : url.searchParams.get('cursor');
    const pushIds = (url.searchParams.get('pushIds') ?? '').split(',').filter((id) => id !== '');
    const request = parseListenRequest({ pushIds, cursor: cursor === '' ? null : cursor });
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
