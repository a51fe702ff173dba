import assert from 'node:assert/strict';
import { test } from 'node:test';

test('the package entry points resolve and a node runs in-process from the public API', async () => {
  // Built by `npm run build` (npm install/ci runs it through "prepare").
  const epush = await import('epush');
  const backplane = await import('epush/backplane');
  assert.equal(typeof backplane.MemoryBackplane, 'function');
  assert.equal(typeof backplane.RedisBackplane, 'function');
  const config = epush.loadConfig({
    argv: ['--port', '0', '--insecure-dev', '--log-level', 'silent'],
    env: {},
    readFile: () => '',
  });
  const node = new epush.EpushNode(config, { log: epush.createLogger('silent', 'embedded') });
  await node.start();
  try {
    const response = await fetch(`${node.url}/api/push-ids`, { method: 'POST' });
    assert.equal(response.status, 201);
    const body = (await response.json()) as { pushIds: string[] };
    assert.equal(body.pushIds.length, 1);
  } finally {
    await node.stop();
  }
});

test('epush/sdk exports the API client as EpushApiClient, and as EpushClient for existing code', async () => {
  const sdk = await import('epush/sdk');
  assert.equal(typeof sdk.EpushApiClient, 'function');
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- the alias is what is tested
  assert.equal(sdk.EpushClient, sdk.EpushApiClient);
  assert.equal(sdk.MAX_PAYLOAD_BYTES, 64 * 1024);
  assert.equal(sdk.MAX_PUSH_IDS_PER_CALL, 1000);
  assert.equal(sdk.MAX_LISTEN_TOKEN_TTL_SECONDS, 31_536_000);
});
