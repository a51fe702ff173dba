/**
 * Recognizes, from raw bytes, the one request the accept loop serves itself: a plain
 * `POST <base>/push/listen HTTP/1.1` with a Content-Length body. Anything else, or anything
 * unusual about it, is not ours: the connection goes to node:http (llhttp), which answers every
 * edge of HTTP/1.1. Accepting only a strict, unambiguous subset keeps the two parsers from ever
 * reading the same bytes differently (request smuggling needs two readings of one message).
 */

export interface ListenRequestHead {
  /** Bytes of body that follow the head. */
  readonly contentLength: number;
  /** The Origin header, when the request has exactly one. */
  readonly origin: string | undefined;
  /** The Host header (exactly one is required). */
  readonly host: string;
}

/** Same as node:http's default `maxHeaderSize`: a longer head goes to node:http (431). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** Header lines: a token name, a colon, then only visible ASCII, spaces and tabs. */
const HEADER_LINES =
  /^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*\r\n)*[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e]*$/;
/** The headers that decide; every other one is only validated. */
const DECIDING =
  /(?:^|\n)(content-length|host|origin|connection|transfer-encoding|expect|upgrade|content-encoding):[ \t]*([^\r]*?)[ \t]*(?=\r|$)/gi;
const DIGITS = /^[0-9]{1,9}$/;
const KEEP_ALIVE = /^keep-alive$/i;

/**
 * Parses `head` (the request line and header lines, without the final blank line, as latin1)
 * and returns the listen request's head, or null when the request is not a plain listen on
 * `listenPath` with a body of at most `maxBodyBytes`.
 */
export function parseListenRequestHead(
  head: string,
  listenPath: string,
  maxBodyBytes: number,
): ListenRequestHead | null {
  const requestLine = `POST ${listenPath} HTTP/1.1\r\n`;
  if (!head.startsWith(requestLine)) return null;
  const lines = head.slice(requestLine.length);
  // One pass validates every line: no folding, bare LF, control or non-ASCII bytes.
  if (!HEADER_LINES.test(lines)) return null;
  let contentLength = -1;
  let origin: string | undefined;
  let host = '';
  let hosts = 0;
  let origins = 0;
  DECIDING.lastIndex = 0;
  for (let match = DECIDING.exec(lines); match !== null; match = DECIDING.exec(lines)) {
    const value = match[2] as string;
    switch ((match[1] as string).toLowerCase()) {
      case 'content-length':
        if (contentLength >= 0 || !DIGITS.test(value)) return null;
        contentLength = Number(value);
        break;
      case 'host':
        hosts += 1;
        host = value;
        break;
      case 'origin':
        origins += 1;
        origin = value;
        break;
      case 'connection':
        // `close` and `upgrade` change the exchange; node:http has the rules for both.
        if (!KEEP_ALIVE.test(value)) return null;
        break;
      default:
        // transfer-encoding, expect, upgrade, content-encoding
        return null;
    }
  }
  if (hosts !== 1 || origins > 1 || contentLength < 0 || contentLength > maxBodyBytes) {
    return null;
  }
  return { contentLength, origin, host };
}
