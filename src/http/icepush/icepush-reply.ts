import type { ServerResponse } from 'node:http';
import {
  encodeState,
  EMPTY_STATE,
  STATE_COOKIE,
  type IcepushBrowserState,
} from './icepush-browser-state.js';
import { BROWSER_ID_NAME } from './icepush-request.js';
import { browserXml, serverErrorXml } from './icepush-xml.js';

/** The original's answers are never cached by a browser or a proxy. */
export const NO_CACHE_HEADERS = {
  'cache-control': 'no-cache, no-store, must-revalidate',
  pragma: 'no-cache',
  expires: '0',
} as const;

const XML_TYPE = 'text/xml; charset=UTF-8';

/**
 * The answer of one `listen.icepush`: its XML (or the empty close), the `ice.push.sequence`
 * header, and the browser's state cookie, updated as the listen goes and written with the answer.
 */
export class IcepushReply {
  private state: IcepushBrowserState;
  private sequenceSet = false;

  constructor(
    readonly res: ServerResponse,
    state: IcepushBrowserState,
  ) {
    this.state = state;
  }

  update(change: Partial<IcepushBrowserState>): void {
    if (change.sequence !== undefined) this.sequenceSet = true;
    this.state = { ...this.state, ...change };
  }

  /** A 200 XML answer; `reason` is sent as `X-Connection-reason` (a `noop`'s why). */
  xml(body: string, reason?: string): void {
    this.write(200, body, reason === undefined ? {} : { 'x-connection-reason': reason });
  }

  /**
   * Tells the client to stop this blocking connection for good (it does not listen again). No
   * state cookie: a duplicate's must not overwrite the one its newer listen sets.
   */
  close(reason: string): void {
    this.write(200, '', { 'x-connection': 'close', 'x-connection-reason': reason }, [], false);
  }

  /** HTTP 503 with `<server-error>`: the client retries after 1, 2 and 4 s, then gives up. */
  serverError(message: string): void {
    this.write(503, serverErrorXml(message), {});
  }

  /** A new browser ID: its cookie, and a fresh state (nothing read yet for that browser). */
  newBrowser(browserId: string): void {
    this.state = { ...EMPTY_STATE, lastListenAt: this.state.lastListenAt };
    this.write(200, browserXml(browserId), {}, [browserCookie(browserId)]);
  }

  private write(
    status: number,
    body: string,
    extra: Record<string, string>,
    cookies: string[] = [],
    withState = true,
  ): void {
    const { res } = this;
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string | number | string[]> = {
      ...NO_CACHE_HEADERS,
      ...extra,
      'content-length': Buffer.byteLength(body),
    };
    const state = `${STATE_COOKIE}=${encodeState(this.state)}; Path=/; HttpOnly; SameSite=Lax`;
    const setCookies = withState ? [...cookies, state] : cookies;
    if (setCookies.length > 0) headers['set-cookie'] = setCookies;
    if (body !== '') headers['content-type'] = XML_TYPE;
    if (this.sequenceSet) headers['ice.push.sequence'] = this.state.sequence;
    res.writeHead(status, headers);
    res.end(body);
  }
}

/** The browser ID cookie, as the original sets it: readable by the page's script, path `/`. */
export function browserCookie(browserId: string): string {
  return `${BROWSER_ID_NAME}=${browserId}; Path=/; SameSite=Lax`;
}
