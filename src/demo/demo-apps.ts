import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { packageRoot } from '../config/package-root.js';
import { isPushId } from '../core/push-id.js';

export interface DemoAppsOptions {
  /** Base URL of the epush node the apps use (API and browser client). */
  readonly pushUrl: string;
  readonly apiKey: string;
  readonly host: string;
  readonly port: number;
  /** Milliseconds between ticker updates; 0 stops the ticker (tests drive it by hand). */
  readonly tickerIntervalMs: number;
}

interface ChatMessage {
  readonly seq: number;
  readonly author: string;
  readonly text: string;
  readonly at: string;
}

const CHAT_GROUP = 'demo.chat';
const TICKER_GROUP = 'demo.ticker';
const SYMBOLS = ['ACME', 'GLOBX', 'INITECH', 'UMBRL'];
const MAX_MESSAGES = 200;

/**
 * Two small applications on one site (one origin), both using one epush node the way real
 * applications do: the server mints push IDs and manages groups through the API key, the page
 * listens through /epush.js, and a notification tells the page to pull fresh data
 * (notify-then-pull). Chat at /chat/, a live ticker at /ticker/.
 */
export class DemoApps {
  private readonly server: Server;
  private readonly messages: ChatMessage[] = [];
  private readonly quotes = new Map(SYMBOLS.map((symbol) => [symbol, 100]));
  private tickerSeq = 0;
  private ticker: NodeJS.Timeout | null = null;

  constructor(private readonly options: DemoAppsOptions) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((error: unknown) => {
        send(res, 500, { error: { code: 'demo_failed', message: String(error) } });
      });
    });
  }

  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://${this.options.host}:${port}`;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) =>
      this.server.listen(this.options.port, this.options.host, resolve),
    );
    if (this.options.tickerIntervalMs > 0) {
      this.ticker = setInterval(() => {
        void this.tick().catch(() => undefined);
      }, this.options.tickerIntervalMs);
    }
  }

  async stop(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }

  /** Moves the quotes one step and tells every ticker view to pull them. */
  async tick(): Promise<void> {
    this.tickerSeq += 1;
    for (const [symbol, price] of this.quotes) {
      this.quotes.set(
        symbol,
        Math.max(1, Math.round((price + (randomInt(0, 201) - 100) / 100) * 100) / 100),
      );
    }
    await this.api('POST', `/api/groups/${TICKER_GROUP}/notify`, {
      payload: { seq: this.tickerSeq },
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://demo.invalid');
    const route = `${req.method ?? 'GET'} ${url.pathname}`;
    switch (route) {
      case 'GET /': {
        page(res, 'index.html', this.options.pushUrl);
        return;
      }
      case 'GET /chat/': {
        page(res, 'chat.html', this.options.pushUrl);
        return;
      }
      case 'GET /ticker/': {
        page(res, 'ticker.html', this.options.pushUrl);
        return;
      }
      case 'POST /chat/api/join': {
        send(res, 201, { pushId: await this.join(CHAT_GROUP, await readJson(req)) });
        return;
      }
      case 'POST /ticker/api/join': {
        send(res, 201, { pushId: await this.join(TICKER_GROUP, await readJson(req)) });
        return;
      }
      case 'GET /chat/api/messages': {
        const since = Number(url.searchParams.get('since') ?? 0);
        send(res, 200, { messages: this.messages.filter((m) => m.seq > since) });
        return;
      }
      case 'POST /chat/api/messages':
        return this.postMessage(req, res);
      case 'GET /ticker/api/quotes': {
        send(res, 200, { seq: this.tickerSeq, quotes: Object.fromEntries(this.quotes) });
        return;
      }
      case 'POST /ticker/api/tick': {
        await this.tick();
        send(res, 202, { seq: this.tickerSeq });
        return;
      }
      default: {
        send(res, 404, {
          error: { code: 'not_found', message: `no ${url.pathname} in the demo` },
        });
        return;
      }
    }
  }

  private async postMessage(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (body === null) {
      send(res, 400, { error: { code: 'invalid_json', message: 'send {"author","text"}' } });
      return;
    }
    const author = typeof body.author === 'string' ? body.author.slice(0, 40) : 'someone';
    const text = typeof body.text === 'string' ? body.text.slice(0, 500) : '';
    if (text === '') {
      send(res, 400, { error: { code: 'invalid_body', message: 'text is empty' } });
      return;
    }
    const message = {
      seq: (this.messages.at(-1)?.seq ?? 0) + 1,
      author,
      text,
      at: new Date().toISOString(),
    };
    this.messages.push(message);
    if (this.messages.length > MAX_MESSAGES) this.messages.shift();
    // Notify then pull: the notification only says "something changed"; pages fetch the messages.
    await this.api('POST', `/api/groups/${CHAT_GROUP}/notify`, { payload: { seq: message.seq } });
    send(res, 201, message);
  }

  /**
   * A view keeps its push ID across reloads (the page stores it in sessionStorage), so a reload
   * resumes from the cursor instead of starting over; an expired one is replaced.
   */
  private async join(group: string, body: Record<string, unknown> | null): Promise<string> {
    const previous = body?.pushId;
    if (isPushId(previous)) {
      try {
        await this.api('PUT', `/api/groups/${group}/members/${previous}`);
        return previous;
      } catch {
        // expired or unknown: mint a new one below
      }
    }
    const { pushIds } = (await this.api('POST', '/api/push-ids', { count: 1 })) as {
      pushIds: string[];
    };
    const pushId = pushIds[0] ?? '';
    await this.api('PUT', `/api/groups/${group}/members/${pushId}`);
    return pushId;
  }

  private async api(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(`${this.options.pushUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.options.apiKey}`,
        'content-type': 'application/json',
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok)
      throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
  }
}

function page(res: ServerResponse, file: string, pushUrl: string): void {
  const html = readFileSync(join(packageRoot(), 'demo', file), 'utf8').replaceAll(
    '{{PUSH_URL}}',
    pushUrl,
  );
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown> | null> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  if (chunks.length === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(json),
  });
  res.end(json);
}
