/**
 * JSON bodies that are not valid UTF-8 (RFC 8259 §8.1) against a real node: every endpoint that
 * reads a JSON body answers 400 `invalid_json` and changes nothing, on both listen paths (the
 * accept loop's Content-Length POST and node:http's chunked POST); a WebSocket text message that
 * is not UTF-8 fails the connection (RFC 6455 §8.1) and the node goes on serving.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import {
  api,
  listen,
  listenRaw,
  startEpush,
  unknownPushId,
  type Api,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

const KEY = 'utf8-bodies-test-key-0123456789';
const SECRET = 'utf8-bodies-listen-token-secret-0123';
const JSON_TYPE = { 'content-type': 'application/json' };

/** Valid JSON text around bytes that are not UTF-8: a lone continuation byte, an overlong '/'. */
const BAD_BYTES = [Buffer.from([0x80]), Buffer.from([0xc0, 0xaf]), Buffer.from([0xff, 0xfe])];

function withBadBytes(before: string, after: string): Buffer[] {
  return BAD_BYTES.map((bad) => Buffer.concat([Buffer.from(before), bad, Buffer.from(after)]));
}

/** POST without Content-Length (chunked): the node:http path rather than the accept loop. */
function chunkedPost(
  url: string,
  path: string,
  body: Buffer,
  headers: Readonly<Record<string, string>> = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const req = httpRequest(`${url}${path}`, {
      method: 'POST',
      headers: { ...JSON_TYPE, ...headers },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const headers = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (typeof value === 'string') headers.set(name, value);
        }
        resolve({
          status: res.statusCode ?? 0,
          headers,
          text,
          body: JSON.parse(text) as unknown,
          ms: Date.now() - started,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('JSON bodies that are not valid UTF-8', () => {
  let node: EpushProcess;
  let app: Api;

  before(async () => {
    node = await startEpush(['--api-key', KEY, '--listen-token-secret', SECRET]);
    app = api(node.url, KEY);
  });
  after(async () => {
    await node.stop();
  });

  test('a group notify is refused with 400 invalid_json and nothing is delivered', async () => {
    const pushId = await app.mintPushId();
    await app.addMember('utf8', pushId);
    const from = (await listen(node.url, [unknownPushId()])).cursor;
    for (const body of withBadBytes('{"payload":"caf', '"}')) {
      const answer = await app.call('POST', '/api/groups/utf8/notify', {
        body,
        headers: JSON_TYPE,
      });
      assertError(answer, 400, 'invalid_json');
    }
    // A valid notify after the refused ones is the first and only one the listener gets.
    const id = await app.notifyGroup('utf8', 'café');
    const answer = await listen(node.url, [pushId], from);
    assert.deepEqual(
      answer.notifications.map((n) => [n.id, n.payload]),
      [[id, 'café']],
    );
  });

  test('a push-ID notify is refused with 400 invalid_json', async () => {
    const pushId = await app.mintPushId();
    for (const body of withBadBytes('{"payload":{"k":"', '"}}')) {
      const answer = await app.call('POST', `/api/push-ids/${pushId}/notify`, {
        body,
        headers: JSON_TYPE,
      });
      assertError(answer, 400, 'invalid_json');
    }
  });

  test('a mint (POST /api/push-ids) is refused with 400 invalid_json', async () => {
    for (const body of withBadBytes('{"count":1,"x":"', '"}')) {
      assertError(
        await app.call('POST', '/api/push-ids', { body, headers: JSON_TYPE }),
        400,
        'invalid_json',
      );
    }
  });

  test('a listen-token request is refused with 400 invalid_json', async () => {
    const pushId = await app.mintPushId();
    for (const body of withBadBytes(`{"pushIds":["${pushId}"],"x":"`, '"}')) {
      assertError(
        await app.call('POST', '/api/listen-tokens', { body, headers: JSON_TYPE }),
        400,
        'invalid_json',
      );
    }
  });

  test('a listen with Content-Length (the accept loop) is refused with 400 invalid_json', async () => {
    for (const body of withBadBytes('{"pushIds":["', `${unknownPushId()}"],"cursor":null}`)) {
      assertError(await listenRaw(node.url, body, { headers: JSON_TYPE }), 400, 'invalid_json');
    }
  });

  test('a chunked listen (node:http) is refused with 400 invalid_json', async () => {
    for (const body of withBadBytes('{"pushIds":["', `${unknownPushId()}"],"cursor":null}`)) {
      assertError(await chunkedPost(node.url, '/push/listen', body), 400, 'invalid_json');
    }
  });

  test('a chunked notify (node:http) is refused with 400 invalid_json', async () => {
    const pushId = await app.mintPushId();
    for (const body of withBadBytes('{"payload":"', '"}')) {
      const answer = await chunkedPost(node.url, `/api/push-ids/${pushId}/notify`, body, {
        authorization: `Bearer ${KEY}`,
      });
      assertError(answer, 400, 'invalid_json');
    }
  });

  test('valid UTF-8 beyond ASCII is accepted and delivered byte for byte', async () => {
    const pushId = await app.mintPushId();
    const from = (await listen(node.url, [unknownPushId()])).cursor;
    const payload = { text: 'naïve 東京 🚀' };
    const answer = await app.call('POST', `/api/push-ids/${pushId}/notify`, {
      body: Buffer.from(JSON.stringify({ payload }), 'utf8'),
      headers: JSON_TYPE,
    });
    assert.equal(answer.status, 202, answer.text);
    const delivered = await listen(node.url, [pushId], from);
    assert.deepEqual(delivered.notifications[0]?.payload, payload);
  });

  test('a WebSocket text message that is not UTF-8 closes the socket with 1007; the node serves on', async () => {
    const ws = new WebSocket(`${node.url.replace(/^http/, 'ws')}/push/ws`);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const messages: string[] = [];
    ws.on('message', (data: Buffer) => messages.push(data.toString('utf8')));
    ws.on('error', () => {}); // the close below is what this test reads
    const closed = new Promise<number>((resolve) => {
      ws.once('close', (code: number) => {
        resolve(code);
      });
    });
    const [bad] = withBadBytes('{"listen":{"pushIds":["', `${unknownPushId()}"],"cursor":null}}`);
    ws.send(bad!, { binary: false });
    const code = await closed;
    assert.equal(code, 1007);
    assert.deepEqual(messages, [], 'no listen answer for a message that is not UTF-8');
    // The node is unharmed: a plain listen is still served.
    const answer = await listen(node.url, [unknownPushId()]);
    assert.equal(typeof answer.cursor, 'string');
  });
});
