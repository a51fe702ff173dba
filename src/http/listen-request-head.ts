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
}

/** Same as node:http's default `maxHeaderSize`: a longer head goes to node:http (431). */
export const MAX_HEAD_BYTES = 16 * 1024;

/** A header line: a token name, a colon, then only visible ASCII, spaces and tabs. */
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e\t]*?)[ \t]*$/;
const DIGITS = /^[0-9]{1,9}$/;

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
  const firstLineEnd = head.indexOf('\r\n');
  const requestLine = firstLineEnd < 0 ? head : head.slice(0, firstLineEnd);
  if (requestLine !== `POST ${listenPath} HTTP/1.1`) return null;
  if (firstLineEnd < 0) return null; // no Host header
  let contentLength = -1;
  let origin: string | undefined;
  let hosts = 0;
  let origins = 0;
  let start = firstLineEnd + 2;
  while (start <= head.length) {
    let end = head.indexOf('\r\n', start);
    if (end < 0) end = head.length;
    const match = HEADER_LINE.exec(head.slice(start, end));
    if (match === null) return null; // folded, bare LF, control or non-ASCII bytes
    const name = (match[1] as string).toLowerCase();
    const value = match[2] as string;
    switch (name) {
      case 'content-length':
        if (contentLength >= 0 || !DIGITS.test(value)) return null;
        contentLength = Number(value);
        break;
      case 'host':
        hosts += 1;
        break;
      case 'origin':
        origins += 1;
        origin = value;
        break;
      case 'connection':
        // `close` and `upgrade` change the exchange; node:http has the rules for both.
        if (!/^[ \t]*keep-alive[ \t]*$/i.test(value)) return null;
        break;
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
      case 'content-encoding':
        return null;
      default:
        break;
    }
    start = end + 2;
  }
  if (hosts !== 1 || origins > 1 || contentLength < 0 || contentLength > maxBodyBytes) {
    return null;
  }
  return { contentLength, origin };
}
