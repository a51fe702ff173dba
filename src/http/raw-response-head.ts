import { STATUS_CODES } from 'node:http';
import type { CorsPolicy } from './cors.js';
import { JSON_HEADERS, type Headers } from './respond.js';

/**
 * The status line and headers (all but Content-Length) of a JSON answer the accept loop writes
 * straight to its socket, as node:http would send them. Cached per status and CORS origin key,
 * with the Date header renewed once a second: the re-poll path builds no header objects.
 */
export class RawResponseHead {
  private readonly cache = new Map<string, string>();
  private dateSecond = 0;
  private dateHeader = '';

  constructor(private readonly cors: CorsPolicy) {}

  /** `HTTP/1.1 <status> …\r\n` and every header line but Content-Length, each ending in CRLF. */
  of(status: number, origin: string | undefined): string {
    const key = `${status} ${this.cors.headersKey(origin)}`;
    let cached = this.cache.get(key);
    if (cached === undefined) {
      cached = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
      const headers: Headers = { ...JSON_HEADERS, ...this.cors.headersForOrigin(origin) };
      for (const [name, value] of Object.entries(headers)) cached += `${name}: ${value}\r\n`;
      this.cache.set(key, cached); // bounded: statuses × allowed origins
    }
    return `${cached}date: ${this.date()}\r\n`;
  }

  private date(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateHeader = new Date(now).toUTCString();
    }
    return this.dateHeader;
  }
}
