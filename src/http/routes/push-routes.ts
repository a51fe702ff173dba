import type { IncomingMessage } from 'node:http';
import { decodeCursor, encodeCursor } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import { MAX_LISTEN_BODY_BYTES } from '../../core/limits.js';
import { parseListenRequest } from '../../core/listen-request.js';
import { ListenStream } from '../../transports/listen-stream.js';
import { longPollOverResponse } from '../../transports/long-poll.js';
import { SseWriter } from '../../transports/sse.js';
import {
  newListenStormState,
  type ListenStormGuard,
  type ListenStormState,
} from '../abuse-limits.js';
import type { CorsPolicy } from '../cors.js';
import { parseJson, readBody } from '../json-body.js';
import type { ListenTokens } from '../listen-tokens.js';
import type { PushService } from '../push-service.js';
import { sendNoContent } from '../respond.js';
import type { Router } from '../router.js';

/** A page outside `--cors-origins` may not listen (its browser would hide the answer anyway). */
function refuseForeignOrigin(cors: CorsPolicy, req: IncomingMessage): void {
  if (!cors.allows(req)) {
    throw new EpushError('forbidden_origin', 'This origin may not listen here (--cors-origins).');
  }
}

/** The browser protocol of docs/protocol.md (long-poll; no API key, push IDs are the capability). */
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
    const connection = longPollOverResponse(
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

  // docs/protocol.md: `?pushIds=a,b&cursor=…`; a reconnecting EventSource sends `Last-Event-ID`, which is
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
