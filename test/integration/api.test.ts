/**
 * The application API (docs/protocol.md) over real HTTP: every call's success status and shape, API keys,
 * and every error code with the JSON error shape.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  api,
  listen,
  startEpush,
  unknownPushId,
  type Api,
  type ClusterNode,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

const KEY_A = 'integration-key-aaaaaaaaaaaa';
const KEY_B = 'integration-key-bbbbbbbbbbbb';
const PUSH_ID_SHAPE = /^[A-Za-z0-9_-]{22,}$/;
const MAX_PAYLOAD = 64 * 1024;

/** Sends a body without Content-Length (chunked), in pieces, and reads the answer. */
function chunkedPost(
  url: string,
  path: string,
  key: string,
  pieces: readonly Buffer[],
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    let i = 0;
    const writeNext = (): void => {
      if (i === pieces.length) {
        req.end();
        return;
      }
      const piece = pieces[i++]!;
      if (req.destroyed) return;
      req.write(piece, () => setImmediate(writeNext));
    };
    writeNext();
  });
}

describe('application API', { concurrency: true }, () => {
  let node: EpushProcess;
  let client: Api;

  before(async () => {
    node = await startEpush(['--api-key', `${KEY_A},${KEY_B}`, '--hold-seconds', '2']);
    client = api(node.url, KEY_A);
  });

  after(async () => {
    await node?.stop();
  });

  describe('push IDs', { concurrency: true }, () => {
    test('POST /api/push-ids without a body answers 201 with one fresh URL-safe push ID', async () => {
      const answer = await client.call<{ pushIds: string[] }>('POST', '/api/push-ids');
      assert.equal(answer.status, 201);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(Object.keys(answer.body), ['pushIds']);
      assert.equal(answer.body.pushIds.length, 1);
      assert.match(answer.body.pushIds[0]!, PUSH_ID_SHAPE);
    });

    test('POST /api/push-ids with a count answers that many distinct push IDs, up to 1000', async () => {
      const five = await client.mintPushIds(5);
      assert.equal(five.length, 5);
      assert.equal(new Set(five).size, 5);
      const thousand = await client.mintPushIds(1000);
      assert.equal(thousand.length, 1000);
      assert.equal(new Set([...thousand, ...five]).size, 1005);
      for (const pushId of thousand) assert.match(pushId, PUSH_ID_SHAPE);
    });

    test('a count outside 1-1000 or not an integer is refused with 400 invalid_count', async () => {
      for (const count of [0, -1, 1001, 1.5, '3', true, [2], { n: 1 }]) {
        const answer = await client.call('POST', '/api/push-ids', { body: { count } });
        assertError(answer, 400, 'invalid_count');
      }
    });

    test('a push-ids body that is not a JSON object is refused with invalid_body or invalid_json', async () => {
      assertError(await client.call('POST', '/api/push-ids', { body: [] }), 400, 'invalid_body');
      assertError(await client.call('POST', '/api/push-ids', { body: 7 }), 400, 'invalid_body');
      assertError(
        await client.call('POST', '/api/push-ids', { body: '"count"' }),
        400,
        'invalid_body',
      );
      assertError(
        await client.call('POST', '/api/push-ids', { body: '{"count": 2' }),
        400,
        'invalid_json',
      );
    });

    test('a minted push ID can be listened on at once (it is not reported expired)', async () => {
      const pushId = await client.mintPushId();
      const answer = await listen(node.url, [pushId, unknownPushId()]);
      assert.equal(answer.expired.length, 1);
      assert.ok(!answer.expired.includes(pushId));
    });
  });

  describe('groups', { concurrency: true }, () => {
    test('PUT a member answers 204 with no body and the member is listed by GET members', async () => {
      const [a, b] = await client.mintPushIds(2);
      const put = await client.call('PUT', `/api/groups/team.a/members/${a!}`);
      assert.equal(put.status, 204);
      assert.equal(put.text, '');
      await client.addMember('team.a', b!);
      const answer = await client.call<{ members: string[] }>('GET', '/api/groups/team.a/members');
      assert.equal(answer.status, 200);
      assert.deepEqual(Object.keys(answer.body), ['members']);
      assert.deepEqual(answer.body.members.sort(), [a!, b!].sort());
    });

    test('adding a member twice keeps one membership', async () => {
      const pushId = await client.mintPushId();
      await client.addMember('twice', pushId);
      await client.addMember('twice', pushId);
      assert.deepEqual(await client.members('twice'), [pushId]);
    });

    test('DELETE a member answers 204 and the member is gone; deleting again is still 204', async () => {
      const [a, b] = await client.mintPushIds(2);
      await client.addMember('shrinking', a!);
      await client.addMember('shrinking', b!);
      const del = await client.call('DELETE', `/api/groups/shrinking/members/${a!}`);
      assert.equal(del.status, 204);
      assert.equal(del.text, '');
      assert.deepEqual(await client.members('shrinking'), [b!]);
      const again = await client.call('DELETE', `/api/groups/shrinking/members/${a!}`);
      assert.equal(again.status, 204);
    });

    test('GET members of a group nobody joined answers 200 with an empty list', async () => {
      assert.deepEqual(await client.members('nobody-here'), []);
    });

    test('groups are independent: a member of one is not listed in another', async () => {
      const pushId = await client.mintPushId();
      await client.addMember('left-side', pushId);
      assert.deepEqual(await client.members('right-side'), []);
      assert.deepEqual(await client.members('left-side'), [pushId]);
    });

    test('group names of 200 characters from the whole allowed alphabet are accepted', async () => {
      const pushId = await client.mintPushId();
      const name = 'Az09._:~-'.repeat(23).slice(0, 200);
      assert.equal(name.length, 200);
      await client.addMember(name, pushId);
      assert.deepEqual(await client.members(name), [pushId]);
      const id = await client.notifyGroup(name, 'x');
      assert.ok(id.length > 0);
    });

    test('an invalid group name is refused with 400 invalid_group_name on every group call', async () => {
      const pushId = await client.mintPushId();
      const bad = [
        'a'.repeat(201),
        'with%20space',
        'caf%C3%A9',
        '%E2%9C%93',
        'sl%2Fash',
        'bad%E0%A4%A',
      ];
      for (const group of bad) {
        assertError(
          await client.call('PUT', `/api/groups/${group}/members/${pushId}`),
          400,
          'invalid_group_name',
        );
        assertError(
          await client.call('DELETE', `/api/groups/${group}/members/${pushId}`),
          400,
          'invalid_group_name',
        );
        assertError(
          await client.call('GET', `/api/groups/${group}/members`),
          400,
          'invalid_group_name',
        );
        assertError(
          await client.call('POST', `/api/groups/${group}/notify`, { body: {} }),
          400,
          'invalid_group_name',
        );
      }
    });

    test('an invalid push ID in a path is refused with 400 invalid_push_id', async () => {
      for (const pushId of ['short', 'x'.repeat(65), 'has%20a%20space%20in%20it']) {
        assertError(
          await client.call('PUT', `/api/groups/g/members/${pushId}`),
          400,
          'invalid_push_id',
        );
        assertError(
          await client.call('DELETE', `/api/groups/g/members/${pushId}`),
          400,
          'invalid_push_id',
        );
        assertError(
          await client.call('POST', `/api/push-ids/${pushId}/notify`, { body: {} }),
          400,
          'invalid_push_id',
        );
      }
    });

    test('adding an unknown push ID to a group answers 404 push_id_not_found and adds nothing', async () => {
      const unknown = unknownPushId();
      const answer = await client.call('PUT', `/api/groups/strangers/members/${unknown}`);
      assertError(answer, 404, 'push_id_not_found');
      assert.deepEqual(await client.members('strangers'), []);
    });
  });

  describe('notify', { concurrency: true }, () => {
    test('POST group notify answers 202 with the notification id, even for a group with no members', async () => {
      const answer = await client.call<{ id: string }>('POST', '/api/groups/empty-room/notify', {
        body: { payload: { a: 1 } },
      });
      assert.equal(answer.status, 202);
      assert.deepEqual(Object.keys(answer.body), ['id']);
      assert.equal(typeof answer.body.id, 'string');
      assert.ok(answer.body.id.length > 0);
    });

    test('POST push-id notify answers 202 with the notification id', async () => {
      const pushId = await client.mintPushId();
      const answer = await client.call<{ id: string }>('POST', `/api/push-ids/${pushId}/notify`, {
        body: { payload: 'hi' },
      });
      assert.equal(answer.status, 202);
      assert.deepEqual(Object.keys(answer.body), ['id']);
      assert.ok(answer.body.id.length > 0);
    });

    test('a notify body is optional: none, an empty object and a null payload are all accepted', async () => {
      const pushId = await client.mintPushId();
      const path = `/api/push-ids/${pushId}/notify`;
      assert.equal((await client.call('POST', path)).status, 202);
      assert.equal((await client.call('POST', path, { body: {} })).status, 202);
      assert.equal((await client.call('POST', path, { body: { payload: null } })).status, 202);
      assert.equal((await client.call('POST', '/api/groups/g1/notify')).status, 202);
    });

    test('a direct notify to an unknown push ID answers 404 push_id_not_found', async () => {
      const answer = await client.call('POST', `/api/push-ids/${unknownPushId()}/notify`, {
        body: { payload: 1 },
      });
      assertError(answer, 404, 'push_id_not_found');
    });

    test('a notify body with another field than payload, or not an object, is refused with invalid_body', async () => {
      const pushId = await client.mintPushId();
      for (const body of [{ payload: 1, extra: 2 }, { data: 1 }, [1], 'just text', 3]) {
        const direct = await client.call('POST', `/api/push-ids/${pushId}/notify`, {
          body: typeof body === 'string' ? JSON.stringify(body) : body,
        });
        assertError(direct, 400, 'invalid_body');
        const group = await client.call('POST', '/api/groups/g2/notify', {
          body: typeof body === 'string' ? JSON.stringify(body) : body,
        });
        assertError(group, 400, 'invalid_body');
      }
    });

    test('a notify body that is not JSON is refused with 400 invalid_json', async () => {
      const pushId = await client.mintPushId();
      for (const text of ['{', '{"payload": }', 'payload=1', "{'payload': 1}", '\u0000']) {
        assertError(
          await client.call('POST', `/api/push-ids/${pushId}/notify`, {
            body: text,
            headers: { 'content-type': 'application/json' },
          }),
          400,
          'invalid_json',
        );
      }
    });

    test('a payload of exactly 64 KiB serialized is accepted and delivered intact', async () => {
      const pushId = await client.mintPushId();
      const payload = 'p'.repeat(MAX_PAYLOAD - 2); // the quotes make it 65536 bytes
      const from = (await listen(node.url, [unknownPushId()])).cursor;
      const id = await client.notifyPushId(pushId, payload);
      const answer = await listen(node.url, [pushId], from);
      assert.equal(answer.notifications.length, 1);
      assert.equal(answer.notifications[0]!.id, id);
      assert.equal(answer.notifications[0]!.payload, payload);
    });

    test('a payload one byte over 64 KiB serialized is refused with 413 payload_too_large', async () => {
      const pushId = await client.mintPushId();
      const payload = 'p'.repeat(MAX_PAYLOAD - 1);
      assertError(
        await client.call('POST', `/api/push-ids/${pushId}/notify`, { body: { payload } }),
        413,
        'payload_too_large',
      );
      assertError(
        await client.call('POST', '/api/groups/big/notify', { body: { payload } }),
        413,
        'payload_too_large',
      );
      // Multi-byte characters count as bytes, not as characters.
      const wide = 'é'.repeat(MAX_PAYLOAD / 2);
      assertError(
        await client.call('POST', '/api/groups/big/notify', { body: { payload: wide } }),
        413,
        'payload_too_large',
      );
    });

    test('a request body larger than the limit is refused with 413 body_too_large', async () => {
      const answer = await client.call('POST', '/api/groups/big/notify', {
        body: JSON.stringify({ payload: 'x'.repeat(200_000) }),
        headers: { 'content-type': 'application/json' },
      });
      assertError(answer, 413, 'body_too_large');
    });

    test('a chunked body that grows past the limit is refused with 413 body_too_large', async () => {
      const pieces = [Buffer.from('{"payload":"')];
      for (let i = 0; i < 20; i++) pieces.push(Buffer.alloc(8192, 'y'));
      pieces.push(Buffer.from('"}'));
      const answer = await chunkedPost(node.url, '/api/groups/big/notify', KEY_A, pieces);
      assert.equal(answer.status, 413);
      assert.equal(
        (JSON.parse(answer.body) as { error: { code: string } }).error.code,
        'body_too_large',
      );
    });

    test('a listen body larger than the limit is refused with 413 body_too_large', async () => {
      const answer = await client.call('POST', '/push/listen', {
        body: JSON.stringify({ pushIds: ['a'.repeat(30)], cursor: null, pad: 'z'.repeat(100_000) }),
        headers: { 'content-type': 'application/json' },
      });
      assertError(answer, 413, 'body_too_large');
    });
  });

  describe('cluster', { concurrency: true }, () => {
    test('GET /api/cluster answers 200 with this node, its connections, startedAt and lastSeen', async () => {
      const answer = await client.call<{ nodes: ClusterNode[] }>('GET', '/api/cluster');
      assert.equal(answer.status, 200);
      assert.deepEqual(Object.keys(answer.body), ['nodes']);
      assert.equal(answer.body.nodes.length, 1);
      const self = answer.body.nodes[0]!;
      assert.deepEqual(Object.keys(self).sort(), ['connections', 'id', 'lastSeen', 'startedAt']);
      assert.equal(self.id, node.nodeId);
      assert.ok(Number.isInteger(self.connections) && self.connections >= 0);
      const startedAt = Date.parse(self.startedAt);
      const lastSeen = Date.parse(self.lastSeen);
      assert.ok(Number.isFinite(startedAt), `startedAt ${self.startedAt}`);
      assert.ok(Number.isFinite(lastSeen), `lastSeen ${self.lastSeen}`);
      assert.ok(startedAt <= lastSeen);
      assert.ok(Date.now() - startedAt < 120_000, 'startedAt is not this run');
    });
  });

  describe('API keys', { concurrency: true }, () => {
    const calls: readonly [string, string][] = [
      ['POST', '/api/push-ids'],
      ['PUT', '/api/groups/g/members/AAAAAAAAAAAAAAAAAAAAAA'],
      ['DELETE', '/api/groups/g/members/AAAAAAAAAAAAAAAAAAAAAA'],
      ['GET', '/api/groups/g/members'],
      ['POST', '/api/groups/g/notify'],
      ['POST', '/api/push-ids/AAAAAAAAAAAAAAAAAAAAAA/notify'],
      ['GET', '/api/cluster'],
    ];

    test('every application API call without a key is refused with 401 unauthorized', async () => {
      const anonymous = api(node.url);
      for (const [method, path] of calls) {
        const answer = await anonymous.call(method, path);
        assertError(answer, 401, 'unauthorized');
        assert.match(answer.headers.get('www-authenticate') ?? '', /^Bearer/i);
      }
    });

    test('every application API call with a wrong key is refused with 401 unauthorized', async () => {
      for (const key of [
        'wrong-key-wrong-key-wrong',
        KEY_A.slice(0, -1),
        `${KEY_A}x`,
        KEY_A.toUpperCase(),
      ]) {
        for (const [method, path] of calls) {
          assertError(await api(node.url, key).call(method, path), 401, 'unauthorized');
        }
      }
    });

    test('an Authorization header that is not a Bearer key is refused with 401', async () => {
      for (const authorization of [
        `Basic ${Buffer.from(`u:${KEY_A}`).toString('base64')}`,
        KEY_A,
        'Bearer',
        `Bearer ${KEY_A},${KEY_B}`,
      ]) {
        const answer = await api(node.url).call('GET', '/api/cluster', {
          headers: { authorization },
        });
        assertError(answer, 401, 'unauthorized');
      }
    });

    test('each of two configured keys is accepted on its own', async () => {
      for (const key of [KEY_A, KEY_B]) {
        const answer = await api(node.url, key).call('POST', '/api/push-ids');
        assert.equal(answer.status, 201, answer.text);
      }
      const pushId = await api(node.url, KEY_A).mintPushId();
      await api(node.url, KEY_B).addMember('shared', pushId);
      assert.deepEqual(await api(node.url, KEY_A).members('shared'), [pushId]);
    });

    test('the browser endpoint needs no key', async () => {
      const answer = await listen(node.url, [unknownPushId()]);
      assert.equal(answer.expired.length, 1);
    });

    test('an unauthorized call changes nothing', async () => {
      const pushId = await client.mintPushId();
      const answer = await api(node.url, 'not-the-key-not-the-key').call(
        'PUT',
        `/api/groups/guarded/members/${pushId}`,
      );
      assertError(answer, 401, 'unauthorized');
      assert.deepEqual(await client.members('guarded'), []);
    });
  });

  describe('routes', { concurrency: true }, () => {
    test('an unknown path is answered 404 not_found, with or without a key', async () => {
      for (const path of [
        '/nope',
        '/api',
        '/api/push-ids/abc/nope',
        '/api/groups/g',
        '/push',
        '/push/nope',
        '/%',
      ]) {
        assertError(await client.call('GET', path), 404, 'not_found');
        assertError(await api(node.url).call('POST', path), 404, 'not_found');
      }
    });

    test('a known path with the wrong method is answered 405 method_not_allowed with Allow', async () => {
      const cases: [string, string, string[]][] = [
        ['GET', '/api/push-ids', ['POST']],
        ['DELETE', '/api/push-ids', ['POST']],
        ['POST', '/api/cluster', ['GET']],
        ['DELETE', '/api/push-ids/AAAAAAAAAAAAAAAAAAAAAA', ['GET']],
        ['POST', '/api/groups/g/presence', ['GET']],
        ['POST', '/api/groups/g/members/AAAAAAAAAAAAAAAAAAAAAA', ['PUT', 'DELETE']],
        ['PUT', '/api/groups/g/members', ['GET']],
        ['GET', '/api/groups/g/notify', ['POST']],
        ['GET', '/push/listen', ['POST', 'OPTIONS']],
        ['POST', '/healthz', ['GET']],
        ['DELETE', '/readyz', ['GET']],
      ];
      for (const [method, path, allowed] of cases) {
        const answer = await client.call(method, path);
        assertError(answer, 405, 'method_not_allowed');
        const allow = (answer.headers.get('allow') ?? '').split(',').map((m) => m.trim());
        for (const m of allowed)
          assert.ok(allow.includes(m), `${method} ${path}: Allow ${allow.join(', ')}`);
        assert.ok(!allow.includes(method), `${method} ${path}: Allow lists ${method}`);
      }
    });

    test('the JSON error shape is used for every error, with a content type and no extra fields', async () => {
      const answers: HttpAnswer[] = [
        await client.call('GET', '/nope'),
        await client.call('GET', '/api/push-ids'),
        await api(node.url).call('GET', '/api/cluster'),
        await client.call('POST', '/api/push-ids', { body: { count: 0 } }),
      ];
      for (const answer of answers) {
        assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
        const body = answer.body as { error: Record<string, unknown> };
        assert.deepEqual(Object.keys(body), ['error']);
        assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message']);
        assert.match(String(body.error.code), /^[a-z]+(_[a-z]+)*$/);
      }
    });
  });
});
