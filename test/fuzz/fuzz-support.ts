/**
 * Shared pieces of the hostile-input property tests (test/fuzz): the fast-check seed, a raw
 * HTTP/1.1 client on `net` sockets (so malformed requests reach the node byte for byte), and the
 * checks every answer of epush must pass (docs/protocol.md: the JSON error shape, no 5xx but 503).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { ERROR_STATUS } from '../../src/core/errors.js';

// --- seed --------------------------------------------------------------------------------------

/**
 * The seed of every property in this test process: `FUZZ_SEED` when set (to reproduce a run),
 * else a random one. Each file prints it, and fast-check prints it (with the path) on a failure.
 */
export const FUZZ_SEED: number = (() => {
  const fromEnv = process.env.FUZZ_SEED;
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const seed = Number(fromEnv);
    if (!Number.isSafeInteger(seed))
      throw new Error(`FUZZ_SEED must be an integer (got ${fromEnv})`);
    return seed;
  }
  return Math.floor(Math.random() * 0x7fffffff);
})();

/** fast-check parameters: the shared seed, `numRuns`, and a bounded shrink. */
export function fuzzParameters<T>(numRuns: number): fc.Parameters<T> {
  return { seed: FUZZ_SEED, numRuns, endOnFailure: false };
}

/** Per-property counters, printed as a diagnostic so the figures can be quoted. */
export class FuzzCounter {
  runs = 0;
  requests = 0;
  readonly known = new Map<string, number>();

  /** A known epush defect (reproduced by a `todo` test) was met: counted, not failed. */
  knownDefect(id: string): void {
    this.known.set(id, (this.known.get(id) ?? 0) + 1);
  }

  summary(name: string): string {
    const known = [...this.known].map(([id, count]) => `${id}×${count}`).join(', ');
    return (
      `${name}: ${this.runs} generated cases, ${this.requests} requests (seed ${FUZZ_SEED})` +
      (known === '' ? '' : `; known defects met: ${known}`)
    );
  }
}

// --- raw HTTP ----------------------------------------------------------------------------------

export interface RawResponse {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly body: Buffer;
  /** The head as received (status line and header lines), for failure messages. */
  readonly head: string;
}

export interface RawResult {
  /** Every complete response, in order (1xx interim answers included). */
  readonly responses: RawResponse[];
  /** Bytes after the last complete response (an incomplete answer). */
  readonly rest: Buffer;
  /** The server closed or reset the connection. */
  readonly closed: boolean;
  /** `waitMs` passed with the connection still open. */
  readonly timedOut: boolean;
}

export interface RawOptions {
  /** Give up (and destroy the socket) after this long. */
  readonly waitMs?: number;
  /** Half-close (FIN) after writing: the server sees the end of the request stream. */
  readonly halfClose?: boolean;
  /** The request is a HEAD: its answer has no body whatever its headers say. */
  readonly head?: boolean;
  /** Resolve as soon as this many final (non-1xx) answers arrived. */
  readonly answers?: number;
}

function parseHead(head: string): { status: number; headers: Map<string, string> } {
  const [statusLine = '', ...lines] = head.split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? NaN);
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name)!}, ${value}` : value);
    }
  }
  return { status, headers };
}

/**
 * Splits `data` into complete responses. A body runs to the end of the connection when it has
 * neither a length nor chunked coding (`closed` tells whether that end has come).
 */
function parseResponses(
  data: Buffer,
  closed: boolean,
  head: boolean,
): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let offset = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', offset);
    if (end === -1) break;
    const headText = data.subarray(offset, end).toString('latin1');
    const { status, headers } = parseHead(headText);
    let bodyStart = end + 4;
    let body: Buffer;
    const final = !(status >= 100 && status < 200);
    if (!final || status === 204 || status === 304 || (head && final)) {
      body = Buffer.alloc(0);
    } else if ((headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) {
      const chunks: Buffer[] = [];
      let at = bodyStart;
      let complete = false;
      for (;;) {
        const lineEnd = data.indexOf('\r\n', at);
        if (lineEnd === -1) break;
        const size = parseInt(data.subarray(at, lineEnd).toString('latin1'), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          const trailerEnd = data.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd === -1 && data.length < lineEnd + 4) break;
          at = trailerEnd === -1 ? lineEnd + 4 : trailerEnd + 4;
          complete = true;
          break;
        }
        if (data.length < lineEnd + 2 + size + 2) break;
        chunks.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
      if (!complete) {
        if (!closed) break;
        // The server ended in the middle of a chunked body: keep what came.
        at = data.length;
      }
      body = Buffer.concat(chunks);
      bodyStart = at;
      responses.push({ status, headers, body, head: headText });
      offset = bodyStart;
      continue;
    } else if (headers.has('content-length')) {
      const length = Number(headers.get('content-length'));
      if (data.length < bodyStart + length) {
        if (!closed) break;
        // Cut short: keep the head (and what came of the body) for the checks and messages.
        responses.push({ status, headers, body: data.subarray(bodyStart), head: headText });
        return { responses, rest: Buffer.alloc(0) };
      }
      body = data.subarray(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      if (!closed) break;
      body = data.subarray(bodyStart);
      bodyStart = data.length;
    }
    responses.push({ status, headers, body, head: headText });
    offset = bodyStart;
  }
  return { responses, rest: data.subarray(offset) };
}

/**
 * Writes `data` on a fresh TCP connection and collects the answers until the server closes the
 * connection, `answers` final answers arrived, or `waitMs` passed.
 */
export function sendRaw(port: number, data: Buffer, options: RawOptions = {}): Promise<RawResult> {
  const waitMs = options.waitMs ?? 5000;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      // On a timeout, what came is all there is: an open stream's body is cut there.
      const { responses, rest } = parseResponses(
        Buffer.concat(chunks),
        closed || timedOut,
        options.head ?? false,
      );
      resolve({ responses, rest, closed, timedOut });
    };
    const timer = setTimeout(() => {
      finish(false, true);
    }, waitMs);
    socket.on('connect', () => {
      socket.write(data);
      if (options.halfClose) socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (options.answers !== undefined) {
        const { responses } = parseResponses(Buffer.concat(chunks), false, options.head ?? false);
        const finals = responses.filter((r) => r.status >= 200 || r.status === 101);
        if (finals.length >= options.answers) finish(false, false);
      }
    });
    socket.on('close', () => {
      finish(true, false);
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') finish(true, false);
      else if (!done) {
        done = true;
        clearTimeout(timer);
        reject(error);
      }
    });
  });
}

export interface RequestParts {
  readonly method: string;
  /** The request target exactly as sent (not encoded here). */
  readonly target: string;
  /** Header lines as [name, value]; sent verbatim, in order. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /**
   * Content-Length to declare: `'auto'` (the body's length), `'none'` (no header), or a number
   * that may disagree with the body.
   */
  readonly contentLength: 'auto' | 'none' | number;
}

/** The bytes of a request; adds `Host` and `Connection: close` unless `headers` has them. */
export function requestBytes(parts: RequestParts): Buffer {
  const lines = [`${parts.method} ${parts.target} HTTP/1.1`];
  const names = new Set(parts.headers.map(([name]) => name.toLowerCase()));
  if (!names.has('host')) lines.push('Host: 127.0.0.1');
  if (!names.has('connection')) lines.push('Connection: close');
  for (const [name, value] of parts.headers) lines.push(`${name}: ${value}`);
  if (parts.contentLength === 'auto') lines.push(`Content-Length: ${parts.body.length}`);
  else if (typeof parts.contentLength === 'number')
    lines.push(`Content-Length: ${parts.contentLength}`);
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), parts.body]);
}

// --- answer checks -----------------------------------------------------------------------------

/** 1xx interim, 101 switching, 2xx, 3xx, 4xx, and 503 (docs/protocol.md: no other 5xx). */
export function isAllowedStatus(status: number): boolean {
  return status >= 100 && (status < 500 || status === 503);
}

/**
 * Asserts that an answer has an allowed status and that every 4xx/503 carries docs/protocol.md's error
 * shape, exactly `{"error": {"code", "message"}}`, with a code of the catalogue whose status is
 * the answer's. `head`: the answer to a HEAD has no body to check.
 */
export function assertWellFormed(response: RawResponse, head: boolean, what: string): void {
  assert.ok(
    isAllowedStatus(response.status),
    `${what}: status ${response.status} is not allowed\n${response.head}\n${response.body.toString('utf8').slice(0, 300)}`,
  );
  if (response.status < 400) return;
  assert.match(
    response.headers.get('content-type') ?? '',
    /^application\/json/,
    `${what}: a ${response.status} without a JSON content type\n${response.head}`,
  );
  if (head) return;
  assertErrorShape(response.body.toString('utf8'), response.status, what);
}

/** `text` is exactly the JSON error shape, with a catalogue code matching `status`. */
export function assertErrorShape(text: string, status: number | null, what: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    assert.fail(`${what}: the error body is not JSON: ${text.slice(0, 300)}`);
  }
  assert.ok(
    typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed),
    `${what}: not an object: ${text.slice(0, 300)}`,
  );
  assert.deepEqual(Object.keys(parsed), ['error'], `${what}: ${text.slice(0, 300)}`);
  const error = (parsed as { error: unknown }).error;
  assert.ok(typeof error === 'object' && error !== null, `${what}: ${text.slice(0, 300)}`);
  assert.deepEqual(
    Object.keys(error).sort(),
    ['code', 'message'],
    `${what}: ${text.slice(0, 300)}`,
  );
  const { code, message } = error as { code: unknown; message: unknown };
  assert.ok(
    typeof code === 'string' && /^[a-z][a-z0-9_]*$/.test(code),
    `${what}: code ${String(code)}`,
  );
  assert.ok(typeof message === 'string' && message.length > 0, `${what}: empty message`);
  assert.ok(code in ERROR_STATUS, `${what}: code ${code} is not in the catalogue`);
  if (status !== null) {
    assert.equal(
      ERROR_STATUS[code as keyof typeof ERROR_STATUS],
      status,
      `${what}: code ${code} answered with status ${status}`,
    );
  }
  return code;
}

// --- generators --------------------------------------------------------------------------------

const PUSH_ID_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-';
const GROUP_CHARS = `${PUSH_ID_CHARS}.:~`;

/** A push ID in the accepted format (16-64 of [A-Za-z0-9_-]) that was never minted. */
export const unknownPushIdArb: fc.Arbitrary<string> = fc.string({
  unit: fc.constantFrom(...Array.from(PUSH_ID_CHARS)),
  minLength: 16,
  maxLength: 64,
});

/** Strings that are not push IDs: wrong length, wrong characters, unicode, control bytes. */
export const badPushIdArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.string({ unit: fc.constantFrom(...Array.from(PUSH_ID_CHARS)), maxLength: 15 }),
    fc.string({
      unit: fc.constantFrom(...Array.from(PUSH_ID_CHARS)),
      minLength: 65,
      maxLength: 400,
    }),
    fc.string({ minLength: 16, maxLength: 64 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
    fc.constantFrom(
      '',
      '..',
      '.',
      '%',
      '%00',
      'a'.repeat(15),
      `${'a'.repeat(20)}=`,
      `${'a'.repeat(20)}/`,
    ),
  )
  .filter((value) => !/^[A-Za-z0-9_-]{16,64}$/.test(value));

/** A group name in the accepted format. */
export const goodGroupArb: fc.Arbitrary<string> = fc
  .string({ unit: fc.constantFrom(...Array.from(GROUP_CHARS)), minLength: 1, maxLength: 200 })
  .filter((value) => value !== '.' && value !== '..');

/** Strings that are not group names: empty, too long, `.`/`..`, other characters, unicode. */
export const badGroupArb: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      '',
      '.',
      '..',
      ' ',
      '/',
      'a/b',
      '%',
      'é',
      '✓',
      '日本語',
      'emoji🚀',
      'a b',
      'tab\t',
    ),
    fc.string({
      unit: fc.constantFrom(...Array.from(GROUP_CHARS)),
      minLength: 201,
      maxLength: 2000,
    }),
    fc.string({ minLength: 1, maxLength: 60 }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }),
  )
  .filter((value) => !(/^[A-Za-z0-9._:~-]{1,200}$/.test(value) && value !== '.' && value !== '..'));

/** JSON text nested `depth` deep (arrays or objects), for the parsers' and serializers' limits. */
export const deepJsonArb: fc.Arbitrary<string> = fc
  .tuple(fc.integer({ min: 1, max: 7000 }), fc.constantFrom('array', 'object', 'mixed'))
  .map(([depth, kind]) => {
    if (kind === 'array') return `${'['.repeat(depth)}${']'.repeat(depth)}`;
    if (kind === 'object') return `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
    return `${'[{"a":'.repeat(depth)}1${'}]'.repeat(depth)}`;
  });

/** Arbitrary JSON values, including large and odd ones. */
export const anyJsonArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.array(fc.integer(), { minLength: 100, maxLength: 3000 }),
  fc.string({ minLength: 1000, maxLength: 20_000 }),
  fc.constantFrom(null, true, false, 0, -1, 1.5, 1e300, '', [], {}),
);

/** Bodies that are (almost always) not JSON: random bytes and JSON-looking garbage. */
export const garbageBodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 2000 }).map((bytes) => Buffer.from(bytes)),
  fc
    .constantFrom(
      '{',
      '}',
      '[',
      '{"pushIds":',
      'null null',
      '\uFEFF{}',
      '{"a":1,}',
      "{'a':1}",
      'NaN',
    )
    .map((text) => Buffer.from(text)),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 300 }).map((text) => Buffer.from(text)),
);

/** Values of every JSON type but the one a field wants, for "wrong type" mutations. */
export function wrongTypeArb(
  except: 'number' | 'string' | 'array' | 'object',
): fc.Arbitrary<unknown> {
  const all: Record<string, fc.Arbitrary<unknown>> = {
    number: fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })),
    string: fc.string({ maxLength: 50 }),
    array: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
    object: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), {
      maxKeys: 4,
    }),
    boolean: fc.boolean(),
  };
  return fc.oneof(
    ...Object.entries(all)
      .filter(([kind]) => kind !== except)
      .map(([, arb]) => arb),
  );
}
