import type { IncomingMessage } from 'node:http';
import { readBody } from '../json-body.js';

/** The browser ID's name: cookie, parameter and (older clients) request header. */
export const BROWSER_ID_NAME = 'ice.push.browser';
/** A form body of a `*.icepush` call: the push IDs of every window of a browser fit easily. */
const MAX_FORM_BYTES = 64 * 1024;

/**
 * One `*.icepush` request as the original server reads it: query and form parameters (repeated
 * names kept, e.g. one `ice.pushid` per push ID), cookies, and the `ice.push.*` values that
 * ICEpush 4.0 clients send as request headers and later ones as parameters.
 */
export class IcepushRequest {
  private constructor(
    private readonly params: ReadonlyMap<string, readonly string[]>,
    private readonly cookies: ReadonlyMap<string, string>,
    private readonly req: IncomingMessage,
  ) {}

  /**
   * Reads the query and, for a POST, the form body. Portlets prefix every parameter with their
   * namespace: the text before `ice.push.browser` in any parameter's name is that prefix, and it
   * is taken off every parameter (parameters without it are not the portlet's and are dropped).
   */
  static async read(req: IncomingMessage, url: URL): Promise<IcepushRequest> {
    const raw: [string, string][] = [...url.searchParams];
    if (req.method === 'POST') {
      const body = (await readBody(req, MAX_FORM_BYTES)).toString('utf8');
      const type = req.headers['content-type'] ?? '';
      if (body !== '' && (type === '' || /form-urlencoded|text\/plain/i.test(type))) {
        raw.push(...new URLSearchParams(body));
      }
    }
    const withBrowser = raw.find(([name]) => name.includes(BROWSER_ID_NAME));
    const prefix = withBrowser
      ? withBrowser[0].slice(0, withBrowser[0].indexOf(BROWSER_ID_NAME))
      : '';
    const params = new Map<string, string[]>();
    for (const [name, value] of raw) {
      if (!name.startsWith(prefix)) continue;
      const key = name.slice(prefix.length);
      const values = params.get(key);
      if (values === undefined) params.set(key, [value]);
      else values.push(value);
    }
    return new IcepushRequest(params, parseCookies(req.headers.cookie), req);
  }

  /** Every value of a parameter, in order. */
  all(name: string): readonly string[] {
    return this.params.get(name) ?? [];
  }

  has(name: string): boolean {
    return this.params.has(name);
  }

  /** The parameter's first value, else the request header of that name (older clients). */
  value(name: string): string | null {
    const param = this.params.get(name)?.[0];
    if (param !== undefined) return param;
    const header = this.req.headers[name.toLowerCase()];
    return typeof header === 'string' ? header : null;
  }

  /** A whole-number value (`ice.push.sequence`, `ice.push.heartbeat`), or null when absent or not one. */
  integer(name: string): number | null {
    const text = this.value(name)?.trim();
    if (text === undefined || !/^\d{1,15}$/.test(text)) return null;
    return Number(text);
  }

  cookie(name: string): string | undefined {
    return this.cookies.get(name);
  }
}

function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  if (header === undefined) return cookies;
  for (const pair of header.split(';')) {
    const equals = pair.indexOf('=');
    if (equals === -1) continue;
    const name = pair.slice(0, equals).trim();
    let value = pair.slice(equals + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
      value = value.slice(1, -1);
    // The first of two same-named cookies is the one with the longer path: the browser's own.
    if (name !== '' && !cookies.has(name)) cookies.set(name, value);
  }
  return cookies;
}
