import type { BrowserContext, Page, Request } from 'playwright-core';

export type ListenTransport = 'long-poll' | 'sse' | 'websocket';

/** One listen a page of the context started, as the browser saw it. */
export interface ListenSeen {
  readonly page: Page;
  readonly transport: ListenTransport;
  /** Date.now() when the browser sent it (the WebSocket: when the socket was created). */
  readonly sentAt: number;
  /** When its answer ended or it failed (null: still open; a WebSocket: always null). */
  endedAt: number | null;
  status: number | null;
  failure: string | null;
  /** Its answer carried `Connection: close`: the next request goes on a new connection. */
  closedConnection: boolean;
  /** Whether the browser opened a new connection for it (from its timing; null: unknown). */
  newConnection: boolean | null;
}

function transportOf(req: Request): ListenTransport | null {
  const path = req.url().split('?')[0] ?? '';
  if (req.method() === 'POST' && path.endsWith('/push/listen')) return 'long-poll';
  if (req.method() === 'GET' && path.endsWith('/push/sse')) return 'sse';
  return null;
}

/**
 * Records every listen the pages of `context` start, whichever transport the client picked: a
 * `POST /push/listen`, a `GET /push/sse` or a WebSocket to `/push/ws`, with its outcome. The
 * returned function gives them all, in the order they were sent.
 */
export function recordListens(context: BrowserContext): () => ListenSeen[] {
  const seen: ListenSeen[] = [];
  const byRequest = new Map<Request, ListenSeen>();
  const connectionOf = (req: Request): boolean | null => {
    const { connectStart, responseStart } = req.timing();
    return responseStart < 0 ? null : connectStart >= 0;
  };
  const entry = (page: Page, transport: ListenTransport): ListenSeen => ({
    page,
    transport,
    sentAt: Date.now(),
    endedAt: null,
    status: null,
    failure: null,
    closedConnection: false,
    newConnection: null,
  });
  context.on('request', (req) => {
    const transport = transportOf(req);
    if (transport === null) return;
    const listen = entry(req.frame().page(), transport);
    seen.push(listen);
    byRequest.set(req, listen);
  });
  context.on('response', (response) => {
    const listen = byRequest.get(response.request());
    if (!listen) return;
    listen.status = response.status();
    void response
      .headerValue('connection')
      .then((value) => {
        listen.closedConnection = value?.toLowerCase() === 'close';
      })
      .catch(() => undefined);
  });
  context.on('requestfinished', (req) => {
    const listen = byRequest.get(req);
    if (listen) {
      listen.endedAt = Date.now();
      listen.newConnection = connectionOf(req);
    }
  });
  context.on('requestfailed', (req) => {
    const listen = byRequest.get(req);
    if (listen) {
      listen.endedAt = Date.now();
      listen.failure = req.failure()?.errorText ?? 'failed';
      listen.newConnection = connectionOf(req);
    }
  });
  const watch = (page: Page): void => {
    page.on('websocket', (socket) => {
      if (socket.url().endsWith('/push/ws')) seen.push(entry(page, 'websocket'));
    });
  };
  for (const page of context.pages()) watch(page);
  context.on('page', watch);
  return () => [...seen];
}
