import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseListenRequestHead } from './listen-request-head.js';

const PATH = '/push/listen';

function head(lines: readonly string[]): string {
  return lines.join('\r\n');
}

function parse(lines: readonly string[], max = 16384): ReturnType<typeof parseListenRequestHead> {
  return parseListenRequestHead(head(lines), PATH, max);
}

const PLAIN = ['POST /push/listen HTTP/1.1', 'Host: a', 'Content-Length: 12'];

describe('parseListenRequestHead', () => {
  it('takes a plain listen, with its Content-Length, Origin and Host', () => {
    assert.deepEqual(parse(PLAIN), { contentLength: 12, origin: undefined, host: 'a' });
    assert.deepEqual(
      parse([
        ...PLAIN,
        'Origin: https://app.example',
        'Connection: keep-alive',
        'user-agent:  Mozilla/5.0 (X11)  ',
        'Content-Type: application/json',
      ]),
      { contentLength: 12, origin: 'https://app.example', host: 'a' },
    );
  });

  it('matches header names in any case and trims optional whitespace', () => {
    assert.deepEqual(parse(['POST /push/listen HTTP/1.1', 'HOST: a', 'content-LENGTH:\t7 ']), {
      contentLength: 7,
      origin: undefined,
      host: 'a',
    });
  });

  it('leaves other methods, paths, versions and targets with a query to node:http', () => {
    for (const line of [
      'GET /push/listen HTTP/1.1',
      'POST /push/listen HTTP/1.0',
      'POST /push/listen?x=1 HTTP/1.1',
      'POST /push/listen/ HTTP/1.1',
      'POST //push/listen HTTP/1.1',
      'POST /api/push-ids HTTP/1.1',
      'POST  /push/listen HTTP/1.1',
      'post /push/listen HTTP/1.1',
    ]) {
      assert.equal(parse([line, 'Host: a', 'Content-Length: 2']), null, line);
    }
  });

  it('serves the listen path under a base path only', () => {
    assert.notEqual(
      parseListenRequestHead(
        head(['POST /p/push/listen HTTP/1.1', 'Host: a', 'Content-Length: 1']),
        '/p/push/listen',
        100,
      ),
      null,
    );
    assert.equal(parseListenRequestHead(head(PLAIN), '/p/push/listen', 100), null);
  });

  it('leaves every framing it does not fully own to node:http', () => {
    const refused: string[][] = [
      ['POST /push/listen HTTP/1.1', 'Host: a'], // no Content-Length
      ['POST /push/listen HTTP/1.1', 'Content-Length: 2'], // no Host
      [...PLAIN, 'Host: b'], // two Hosts
      [...PLAIN, 'Content-Length: 12'], // two Content-Lengths, even equal
      ['POST /push/listen HTTP/1.1', 'Host: a', 'Content-Length: 1,1'],
      ['POST /push/listen HTTP/1.1', 'Host: a', 'Content-Length: -1'],
      ['POST /push/listen HTTP/1.1', 'Host: a', 'Content-Length: 0x10'],
      ['POST /push/listen HTTP/1.1', 'Host: a', 'Content-Length: 1234567890'],
      [...PLAIN, 'Transfer-Encoding: chunked'],
      [...PLAIN, 'Transfer-Encoding : chunked'], // space before the colon
      [...PLAIN, 'Expect: 100-continue'],
      [...PLAIN, 'Connection: close'],
      [...PLAIN, 'Connection: Upgrade', 'Upgrade: websocket'],
      [...PLAIN, 'Content-Encoding: gzip'],
      [...PLAIN, 'Origin: https://a', 'Origin: https://b'],
      [...PLAIN, 'X-Folded: a', ' continued'], // obs-fold
      [...PLAIN, 'X-Bare: a\nInjected: b'], // bare LF
      [...PLAIN, 'X-Nul: a\0b'],
      [...PLAIN, 'X-Latin: caf\u00e9'],
      [...PLAIN, ': no name'],
      [...PLAIN, 'No colon'],
      [...PLAIN, ''], // an empty line inside the head
    ];
    for (const lines of refused) assert.equal(parse(lines), null, JSON.stringify(lines));
  });

  it('leaves a body over the limit to node:http (413 there)', () => {
    assert.equal(parse(PLAIN, 11), null);
    assert.notEqual(parse(PLAIN, 12), null);
  });
});
