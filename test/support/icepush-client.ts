/**
 * A protocol-level ICEpush browser, written from ICEpush 4.x's client (connection.async.js and
 * application.js): the `*.icepush` requests with their form parameters, the cookies a browser
 * keeps (`ice.push.browser` and whatever else the server sets), the `ice.push.sequence` echo, and
 * the XML answers parsed by their root element, as the page's command dispatcher does.
 */

/** One `<notification push-ids="…">payload</notification>` (or the classic notified-pushids). */
export interface IcepushNotification {
  readonly pushIds: string[];
  readonly payload: string | null;
}

export type IcepushAnswer =
  | { readonly kind: 'notified'; readonly notifications: IcepushNotification[] }
  | { readonly kind: 'noop'; readonly reason: string | null }
  | { readonly kind: 'back-off'; readonly delay: number }
  | { readonly kind: 'configuration'; readonly attributes: Record<string, string> }
  | { readonly kind: 'browser'; readonly id: string }
  | { readonly kind: 'server-error'; readonly message: string }
  | { readonly kind: 'close'; readonly reason: string | null }
  | { readonly kind: 'empty' }
  | { readonly kind: 'other'; readonly status: number; readonly body: string };

export interface IcepushExchange {
  readonly status: number;
  readonly headers: Headers;
  readonly body: string;
  readonly answer: IcepushAnswer;
}

export interface ListenOptions {
  /** Sent as `ice.push.heartbeat` (ms). */
  readonly heartbeat?: number;
  readonly sendConfiguration?: boolean;
  /** Overrides the window ID for this listen. */
  readonly window?: string;
  readonly signal?: AbortSignal;
  /** Extra form parameters (already prefixed if the test wants a prefix). */
  readonly extra?: readonly [string, string][];
}

export interface ClientOptions {
  /** The web context the page's URIs are relative to, e.g. `http://host:port/app/`. */
  readonly base: string;
  /** `ice.push.window`: 5 hex digits, random per page in the original. */
  readonly window?: string;
  /** Portlet namespace put before every parameter's name. */
  readonly namespace?: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescapeXml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|apos);/g, (_, name: string) => ENTITIES[name] ?? '');
}

function attributesOf(text: string): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const match of text.matchAll(/([\w.:-]+)="([^"]*)"/g)) {
    attributes[match[1]!] = unescapeXml(match[2]!);
  }
  return attributes;
}

/** Parses an answer by its root element, as ICEpush's command dispatcher does. */
export function parseIcepushAnswer(status: number, headers: Headers, body: string): IcepushAnswer {
  if (headers.get('x-connection') === 'close') {
    return { kind: 'close', reason: headers.get('x-connection-reason') };
  }
  const trimmed = body.trim();
  if (status === 503) {
    const match = /^<server-error\s+([^>]*?)\/>$/.exec(trimmed);
    return match
      ? { kind: 'server-error', message: attributesOf(match[1]!).message ?? '' }
      : { kind: 'other', status, body };
  }
  if (status !== 200) return { kind: 'other', status, body };
  if (trimmed === '') return { kind: 'empty' };
  const root = /^<([\w-]+)([^>]*?)(\/?)>/.exec(trimmed);
  if (!root) return { kind: 'other', status, body };
  const [, name, rawAttributes = ''] = root;
  const attributes = attributesOf(rawAttributes);
  switch (name) {
    case 'notified-pushids': {
      const text = /^<notified-pushids>([^<]*)<\/notified-pushids>$/.exec(trimmed)?.[1] ?? '';
      const pushIds = unescapeXml(text)
        .split(' ')
        .filter((id) => id !== '');
      return { kind: 'notified', notifications: [{ pushIds, payload: null }] };
    }
    case 'notifications': {
      const notifications: IcepushNotification[] = [];
      const element = /<notification\s+push-ids="([^"]*)"\s*(?:\/>|>([^<]*)<\/notification>)/g;
      for (const match of trimmed.matchAll(element)) {
        notifications.push({
          pushIds: unescapeXml(match[1]!)
            .split(' ')
            .filter((id) => id !== ''),
          payload: match[2] === undefined ? null : unescapeXml(match[2]),
        });
      }
      return { kind: 'notified', notifications };
    }
    case 'noop':
      return { kind: 'noop', reason: headers.get('x-connection-reason') };
    case 'back-off':
      return { kind: 'back-off', delay: Number(attributes.delay) };
    case 'configuration':
      return { kind: 'configuration', attributes };
    case 'browser':
      return { kind: 'browser', id: attributes.id ?? '' };
    default:
      return { kind: 'other', status, body };
  }
}

/** Every push ID an answer notified. */
export function notifiedIds(answer: IcepushAnswer): string[] {
  return answer.kind === 'notified' ? answer.notifications.flatMap((n) => n.pushIds) : [];
}

/** One browser: its cookie jar is shared by all its windows (pages of the same site). */
export class IcepushBrowser {
  readonly cookies = new Map<string, string>();
  /** The last `ice.push.sequence` received (the shared slot of the 2015 client). */
  sequence: number | null = null;
  readonly base: string;
  window: string;
  private readonly namespace: string;

  constructor(options: ClientOptions) {
    this.base = options.base.endsWith('/') ? options.base : `${options.base}/`;
    this.window = options.window ?? Math.random().toString(16).slice(2, 7);
    this.namespace = options.namespace ?? '';
  }

  get browserId(): string | undefined {
    return this.cookies.get('ice.push.browser');
  }

  /** A request of this browser: its cookies go with it, the ones it gets back are kept. */
  async post(
    endpoint: string,
    params: readonly [string, string][],
    init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ): Promise<IcepushExchange> {
    const form = new URLSearchParams();
    for (const [name, value] of params) form.append(`${this.namespace}${name}`, value);
    const cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(`${this.base}${endpoint}`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded; charset=UTF-8',
        ...(cookie === '' ? {} : { cookie }),
        ...init.headers,
      },
      body: form.toString(),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    const body = await response.text();
    for (const line of response.headers.getSetCookie()) {
      const pair = line.split(';')[0] ?? '';
      const equals = pair.indexOf('=');
      if (equals > 0) this.cookies.set(pair.slice(0, equals).trim(), pair.slice(equals + 1).trim());
    }
    return {
      status: response.status,
      headers: response.headers,
      body,
      answer: parseIcepushAnswer(response.status, response.headers, body),
    };
  }

  /** `create-push-id.icepush`: a new push ID (and the browser cookie when it had none). */
  async createPushId(): Promise<string> {
    const exchange = await this.post('create-push-id.icepush', []);
    if (exchange.status !== 200)
      throw new Error(`create-push-id: ${exchange.status} ${exchange.body}`);
    return exchange.body;
  }

  /**
   * One `listen.icepush` as the page's connection sends it: the browser ID (parameter and
   * cookie), the window, every push ID, the heartbeat and the last sequence.
   */
  async listen(pushIds: readonly string[], options: ListenOptions = {}): Promise<IcepushExchange> {
    const params: [string, string][] = [];
    if (this.browserId !== undefined) params.push(['ice.push.browser', this.browserId]);
    params.push(['ice.push.window', options.window ?? this.window]);
    for (const id of pushIds) params.push(['ice.pushid', id]);
    if (options.heartbeat !== undefined)
      params.push(['ice.push.heartbeat', String(options.heartbeat)]);
    if (this.sequence !== null) params.push(['ice.push.sequence', String(this.sequence)]);
    if (options.sendConfiguration) params.push(['ice.sendConfiguration', '']);
    params.push(...(options.extra ?? []));
    const exchange = await this.post('listen.icepush', params, {
      ...(options.signal ? { signal: options.signal } : {}),
    });
    const sequence = exchange.headers.get('ice.push.sequence');
    if (sequence !== null) this.sequence = Number(sequence);
    if (exchange.answer.kind === 'browser')
      this.cookies.set('ice.push.browser', exchange.answer.id);
    return exchange;
  }

  /** Listens until the browser has an ID (answers `<browser id>` first when it had none). */
  async bootstrap(pushIds: readonly string[] = []): Promise<void> {
    if (this.browserId !== undefined) return;
    const first = await this.listen(pushIds, { heartbeat: 1000 });
    if (first.answer.kind !== 'browser') throw new Error(`expected <browser>, got ${first.body}`);
  }
}

/** The application side: `add-group-member`, `remove-group-member`, `notify` with a key. */
export class IcepushApplication {
  constructor(
    readonly base: string,
    private readonly key: string | null,
    private readonly keyAs: 'bearer' | 'param' = 'bearer',
  ) {}

  async call(
    endpoint: string,
    params: [string, string][],
  ): Promise<{ status: number; body: string }> {
    const form = new URLSearchParams(params);
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
    };
    if (this.key !== null && this.keyAs === 'bearer') headers.authorization = `Bearer ${this.key}`;
    if (this.key !== null && this.keyAs === 'param') form.append('ice.push.apiKey', this.key);
    const base = this.base.endsWith('/') ? this.base : `${this.base}/`;
    const response = await fetch(`${base}${endpoint}`, {
      method: 'POST',
      headers,
      body: form.toString(),
    });
    return { status: response.status, body: await response.text() };
  }

  addGroupMember(group: string, id: string): Promise<{ status: number; body: string }> {
    return this.call('add-group-member.icepush', [
      ['group', group],
      ['id', id],
    ]);
  }

  removeGroupMember(group: string, id: string): Promise<{ status: number; body: string }> {
    return this.call('remove-group-member.icepush', [
      ['group', group],
      ['id', id],
    ]);
  }

  notify(group: string, payload?: string): Promise<{ status: number; body: string }> {
    const params: [string, string][] = [['group', group]];
    if (payload !== undefined) params.push(['option', `payload=${payload}`]);
    return this.call('notify.icepush', params);
  }
}
