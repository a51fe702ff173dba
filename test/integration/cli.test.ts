/**
 * The command line (docs/protocol.md): --help, refused configurations (exit 2, one stderr line naming the
 * flag), precedence flag > env > file > default, and the ready line.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FLAGS } from '../../src/config/flags.js';
import {
  api,
  listen,
  request,
  runEpush,
  startEpush,
  unknownPushId,
  type EpushProcess,
  type RunResult,
} from '../support/epush-process.js';

const KEY = 'cli-test-key-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'epush-cli-'));
const started: EpushProcess[] = [];

function configFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function start(...args: Parameters<typeof startEpush>): Promise<EpushProcess> {
  const node = await startEpush(...args);
  started.push(node);
  return node;
}

/** The node's hold time as observed by a listen that nothing wakes. */
async function holdMs(node: EpushProcess): Promise<number> {
  const pushId = await api(node.url, KEY).mintPushId();
  return (await listen(node.url, [pushId])).ms;
}

/** Exit 2, nothing on stdout, exactly one line on stderr that contains `mention`. */
function assertRefused(result: RunResult, mention: string): void {
  assert.equal(result.code, 2, `exit code ${result.code}; stderr:\n${result.stderr}`);
  assert.equal(result.stdout, '', `stdout: ${result.stdout}`);
  const lines = result.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${result.stderr}`);
  assert.ok(lines[0]!.includes(mention), `stderr does not name ${mention}: ${lines[0]!}`);
}

describe('command line', { concurrency: 3 }, () => {
  after(async () => {
    await Promise.all(started.map((node) => node.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  describe('help', { concurrency: true }, () => {
    const specFlags = [
      'host',
      'port',
      'backplane',
      'node-id',
      'api-key',
      'hold-seconds',
      'push-id-ttl',
      'retention-seconds',
      'workers',
      'drain-seconds',
      'cors-origins',
      'insecure-dev',
      'headers-timeout-seconds',
      'body-timeout-seconds',
      'idle-timeout-seconds',
      'config',
    ];

    test('epush --help exits 0 and lists every flag with its environment variable', async () => {
      const result = await runEpush(['--help']);
      assert.equal(result.code, 0, result.stderr);
      const tableFlags = Object.values(FLAGS).map((spec) => spec.name);
      for (const flag of new Set([...specFlags, ...tableFlags])) {
        assert.match(result.stdout, new RegExp(`--${flag}\\b`), `--help does not list --${flag}`);
        const env = `EPUSH_${flag.toUpperCase().replaceAll('-', '_')}`;
        assert.ok(result.stdout.includes(env), `--help does not name ${env}`);
      }
      assert.match(result.stdout, /epush start/);
    });

    test('an unknown command exits 2 with one line on stderr', async () => {
      assertRefused(await runEpush(['launch']), 'launch');
    });
  });

  describe('refused configurations', { concurrency: true }, () => {
    const refused: [string, string[], string, Record<string, string>?][] = [
      ['a --port above 65535', ['--port', '65536'], '--port'],
      ['a --hold-seconds of 0', ['--hold-seconds', '0'], '--hold-seconds'],
      ['a fractional --push-id-ttl', ['--push-id-ttl', '1.5'], '--push-id-ttl'],
      ['a --retention-seconds of 0', ['--retention-seconds', '0'], '--retention-seconds'],
      ['a --retention-max-mb of 0', ['--retention-max-mb', '0'], '--retention-max-mb'],
      ['a --workers of 0', ['--workers', '0'], '--workers'],
      ['a negative --drain-seconds', ['--drain-seconds', '-1'], '--drain-seconds'],
      [
        'an empty --headers-timeout-seconds',
        ['--headers-timeout-seconds='],
        '--headers-timeout-seconds',
      ],
      ['a --body-timeout-seconds of 0', ['--body-timeout-seconds', '0'], '--body-timeout-seconds'],
      [
        'a --idle-timeout-seconds of "soon"',
        ['--idle-timeout-seconds', 'soon'],
        '--idle-timeout-seconds',
      ],
      ['an unknown flag', ['--hold-secs', '5'], '--hold-secs'],
      ['a flag without its value', ['--hold-seconds'], '--hold-seconds'],
      ['a backplane URL of an unknown kind', ['--backplane', 'kafka://broker:9092'], '--backplane'],
      [
        'a --cors-origins entry that is not an origin',
        ['--cors-origins', 'example.com/path'],
        '--cors-origins',
      ],
      ['a bad value from the environment', [], 'EPUSH_HOLD_SECONDS', { EPUSH_HOLD_SECONDS: 'abc' }],
      [
        'a headers timeout longer than the body timeout',
        ['--headers-timeout-seconds', '20', '--body-timeout-seconds', '10'],
        'timeout-seconds',
      ],
    ];
    for (const [what, args, mention, env] of refused) {
      test(`${what} stops the start with exit 2 and one stderr line naming ${mention}`, async () => {
        const result = await runEpush(
          ['start', '--port', '0', '--api-key', KEY, ...args],
          env ? { env } : {},
        );
        assertRefused(result, mention);
      });
    }

    test('no --api-key and no --insecure-dev stops the start with exit 2 naming --api-key', async () => {
      assertRefused(await runEpush(['start', '--port', '0']), '--api-key');
    });

    test('--insecure-dev on a non-loopback --host 0.0.0.0 stops the start with exit 2', async () => {
      assertRefused(
        await runEpush(['start', '--port', '0', '--insecure-dev', '--host', '0.0.0.0']),
        '--insecure-dev',
      );
    });

    test('a --config file that does not exist stops the start with exit 2', async () => {
      assertRefused(
        await runEpush(['start', '--api-key', KEY, '--config', join(dir, 'missing.json')]),
        '--config',
      );
    });

    test('a --config file that is not JSON stops the start with exit 2', async () => {
      const path = configFile('broken.json', '{"hold-seconds": 5,');
      assertRefused(await runEpush(['start', '--api-key', KEY, '--config', path]), '--config');
    });

    test('a --config file with an unknown key stops the start with exit 2 naming the key', async () => {
      const path = configFile('unknown.json', '{"hold-secs": 5}');
      assertRefused(await runEpush(['start', '--api-key', KEY, '--config', path]), 'hold-secs');
    });

    test('a --config file with a bad value stops the start with exit 2 naming the flag', async () => {
      const path = configFile('bad-value.json', '{"port": 0, "hold-seconds": 0}');
      assertRefused(
        await runEpush(['start', '--api-key', KEY, '--config', path]),
        '--hold-seconds',
      );
    });
  });

  describe('precedence and the ready line', { concurrency: true }, () => {
    // Five nodes, each with its node id (shown in the ready line) and hold-seconds (observed
    // by how long a listen is held) coming from a different source.
    let byDefault: EpushProcess;
    let byFile: EpushProcess;
    let byEnv: EpushProcess;
    let byFlag: EpushProcess;
    let byEnvOnly: EpushProcess;

    before(async () => {
      const slow = configFile('slow.json', '{"node-id": "from-file", "hold-seconds": 5}');
      const quick = configFile('quick.json', '{"node-id": "from-file", "hold-seconds": 1}');
      const camel = configFile(
        'camel.json',
        '{"nodeId": "camel-node", "insecureDev": true, "logLevel": "warn", "holdSeconds": 1}',
      );
      [byDefault, byFile, byEnv, byFlag, byEnvOnly] = await Promise.all([
        start(['--api-key', KEY, '--hold-seconds', '1']),
        start(['--api-key', KEY, '--config', quick]),
        start(['--api-key', KEY, '--config', slow], {
          env: { EPUSH_NODE_ID: 'from-env', EPUSH_HOLD_SECONDS: '1' },
        }),
        start(['--api-key', KEY, '--config', slow, '--node-id=from-flag', '--hold-seconds', '1'], {
          env: { EPUSH_NODE_ID: 'from-env', EPUSH_HOLD_SECONDS: '3' },
        }),
        start([], { defaults: false, env: { EPUSH_CONFIG: camel, EPUSH_PORT: '0' } }),
      ]);
    });

    test('--port 0 binds a free port, and the ready line names it', async () => {
      const nodes = [byDefault, byFile, byEnv, byFlag, byEnvOnly];
      for (const node of nodes) {
        assert.ok(node.port > 0);
        assert.equal(node.host, '127.0.0.1');
        assert.equal((await request('GET', `http://127.0.0.1:${node.port}/healthz`)).status, 200);
      }
      assert.equal(new Set(nodes.map((node) => node.port)).size, nodes.length);
    });

    test('the ready line is exactly one line naming the URL, the node and the backplane', async () => {
      await listen(byDefault.url, [unknownPushId()]);
      assert.equal(
        byDefault.stdout(),
        `epush listening on http://127.0.0.1:${byDefault.port} (node ${byDefault.nodeId}, backplane memory)\n`,
      );
    });

    test('the node id defaults to the hostname and the process id', () => {
      assert.equal(byDefault.nodeId, `${hostname()}-${byDefault.child.pid!}`);
    });

    test('a config file value is used when no flag or environment variable sets it', async () => {
      assert.equal(byFile.nodeId, 'from-file');
      const ms = await holdMs(byFile);
      assert.ok(ms >= 900 && ms < 2900, `held ${ms} ms: the file's hold-seconds 1 was not used`);
    });

    test('an environment variable overrides the config file', async () => {
      assert.equal(byEnv.nodeId, 'from-env');
      const ms = await holdMs(byEnv);
      assert.ok(ms >= 900 && ms < 2900, `held ${ms} ms: EPUSH_HOLD_SECONDS=1 was not used`);
    });

    test('a flag overrides the environment and the config file', async () => {
      assert.equal(byFlag.nodeId, 'from-flag');
      const ms = await holdMs(byFlag);
      assert.ok(ms >= 900 && ms < 2900, `held ${ms} ms: --hold-seconds 1 was not used`);
    });

    test('config keys may be camelCase, and the file and the port may come from the environment', async () => {
      assert.equal(byEnvOnly.nodeId, 'camel-node');
      const minted = await request('POST', `${byEnvOnly.url}/api/push-ids`);
      assert.equal(minted.status, 201, 'insecureDev from the file did not allow keyless calls');
    });

    test('a port already in use stops the start with a non-zero exit and no ready line', async () => {
      const second = await runEpush(['start', '--api-key', KEY, '--port', String(byDefault.port)]);
      assert.notEqual(second.code, 0);
      assert.equal(second.stdout, '');
      assert.match(second.stderr, /EADDRINUSE|in use/i);
    });
  });
});
