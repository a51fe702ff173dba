import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLAGS, envName } from './flags.js';
import { ConfigError, embeddedConfig, helpText, loadConfig } from './load-config.js';
import { defaultMaxConnections, RESERVED_FILE_DESCRIPTORS } from './open-files-limit.js';

const KEY = 'k'.repeat(16);

function load(
  argv: string[],
  env: Record<string, string> = {},
  files: Record<string, string> = {},
) {
  return loadConfig({
    argv,
    env,
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw new Error('ENOENT: no such file');
      return text;
    },
  });
}

/** Each case's argv (with --insecure-dev) and env is refused with a one-line ConfigError. */
function assertRefusedOnOneLine(
  cases: readonly (readonly [string[], Record<string, string>, RegExp])[],
): void {
  for (const [argv, env, message] of cases) {
    assert.throws(
      () => load(['--insecure-dev', ...argv], env),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, message);
        assert.doesNotMatch(error.message, /\n/);
        return true;
      },
    );
  }
}

describe('loadConfig', () => {
  test('defaults match the SPEC table', () => {
    const config = load(['--insecure-dev']);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, 8080);
    assert.equal(config.backplane, 'memory');
    assert.equal(config.holdSeconds, 25);
    assert.equal(config.pushIdTtl, 600);
    assert.equal(config.retentionSeconds, 300);
    assert.equal(config.workers, 1);
    assert.equal(config.drainSeconds, 10);
    assert.deepEqual(config.corsOrigins, ['*']);
    assert.deepEqual(config.apiKey, []);
  });

  test('precedence is flag > environment > file > default', () => {
    const files = {
      '/c.json': JSON.stringify({
        'hold-seconds': 7,
        port: 7000,
        drainSeconds: 3,
        'api-key': [KEY],
      }),
    };
    const env = { EPUSH_HOLD_SECONDS: '8', EPUSH_PORT: '8000', EPUSH_CONFIG: '/c.json' };
    const config = load(['--port', '9000'], env, files);
    assert.equal(config.port, 9000, 'flag wins');
    assert.equal(config.holdSeconds, 8, 'env beats file');
    assert.equal(config.drainSeconds, 3, 'file beats default');
    assert.deepEqual(config.apiKey, [KEY]);
    assert.equal(config.retentionSeconds, 300, 'default');
  });

  test('accepts --flag=value, bare booleans and comma lists', () => {
    const config = load([
      `--api-key=${KEY},${KEY}x`,
      '--insecure-dev',
      '--cors-origins',
      'https://a.example, http://b.example:81',
    ]);
    assert.deepEqual(config.apiKey, [KEY, `${KEY}x`]);
    assert.equal(config.insecureDev, true);
    assert.deepEqual(config.corsOrigins, ['https://a.example', 'http://b.example:81']);
  });

  test('every bad value names its flag', () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--port', 'x'], {}, /^--port must be an integer/],
      [['--port', '70000'], {}, /^--port/],
      [['--hold-seconds', '0'], {}, /^--hold-seconds/],
      [[], { EPUSH_PUSH_ID_TTL: '-1' }, /^EPUSH_PUSH_ID_TTL \(--push-id-ttl\)/],
      [['--backplane', 'kafka://x'], {}, /^--backplane/],
      [['--cors-origins', 'example.com'], {}, /^--cors-origins/],
      [['--log-level', 'loud'], {}, /^--log-level/],
      [['--api-key', 'short'], {}, /^--api-key/],
      [['--nope', '1'], {}, /^unknown flag --nope/],
      [['--port'], {}, /^--port needs a value/],
    ];
    assertRefusedOnOneLine(cases);
  });

  test('requires an API key unless --insecure-dev, and refuses --insecure-dev off loopback', () => {
    assert.throws(() => load([]), /--api-key is required/);
    assert.throws(() => load(['--insecure-dev', '--host', '0.0.0.0']), /--insecure-dev is refused/);
    assert.equal(load(['--api-key', KEY, '--host', '0.0.0.0']).host, '0.0.0.0');
  });

  test('a config file that is missing, not JSON or has unknown keys is refused', () => {
    assert.throws(
      () => load(['--insecure-dev', '--config', '/missing.json']),
      /--config: cannot read/,
    );
    assert.throws(
      () => load(['--insecure-dev', '--config', '/bad.json'], {}, { '/bad.json': '{' }),
      /not valid JSON/,
    );
    assert.throws(
      () => load(['--insecure-dev', '--config', '/u.json'], {}, { '/u.json': '{"colour":1}' }),
      /unknown key "colour"/,
    );
  });

  test('accepts every backplane URL scheme and refuses a malformed one, with the reason', () => {
    assert.throws(
      () => load(['--insecure-dev', '--backplane', 'stomp://127.0.0.1:61613?prefix=a..b']),
      /--backplane: prefix must be dot-separated words/,
    );
    assert.equal(
      load(['--insecure-dev', '--backplane', 'stomp://u:p@127.0.0.1:61613?prefix=shop.push'])
        .backplane,
      'stomp://u:p@127.0.0.1:61613?prefix=shop.push',
    );
    assert.equal(
      load(['--insecure-dev', '--backplane', 'redis://127.0.0.1:6379']).backplane,
      'redis://127.0.0.1:6379',
    );
    assert.equal(
      load(['--insecure-dev', '--backplane', 'nats://u:p@127.0.0.1:4222']).backplane,
      'nats://u:p@127.0.0.1:4222',
    );
    assert.equal(load(['--insecure-dev', '--workers', 'auto']).workers, 'auto');
  });

  test('listen tokens: off by default; secrets, requirement and ttl from flag, env or file', () => {
    const secret = 's'.repeat(32);
    const off = load(['--insecure-dev']);
    assert.deepEqual(off.listenTokenSecret, []);
    assert.equal(off.requireListenTokens, false);
    assert.equal(off.listenTokenTtl, 86400);
    const on = load([
      '--insecure-dev',
      '--listen-token-secret',
      `${secret},${secret}old`,
      '--require-listen-tokens',
      '--listen-token-ttl=3600',
    ]);
    assert.deepEqual(on.listenTokenSecret, [secret, `${secret}old`]);
    assert.equal(on.requireListenTokens, true);
    assert.equal(on.listenTokenTtl, 3600);
    const fromEnv = load(['--insecure-dev'], {
      EPUSH_LISTEN_TOKEN_SECRET: secret,
      EPUSH_REQUIRE_LISTEN_TOKENS: 'true',
      EPUSH_LISTEN_TOKEN_TTL: '60',
    });
    assert.equal(fromEnv.requireListenTokens, true);
    assert.equal(fromEnv.listenTokenTtl, 60);
    const fromFile = load(
      ['--insecure-dev', '--config', '/t.json'],
      {},
      {
        '/t.json': JSON.stringify({
          'listen-token-secret': [secret],
          requireListenTokens: true,
          'listen-token-ttl': 120,
        }),
      },
    );
    assert.deepEqual(fromFile.listenTokenSecret, [secret]);
    assert.equal(fromFile.listenTokenTtl, 120);
  });

  test('listen tokens: short secrets, a ttl out of range and a requirement without secret are refused', () => {
    assert.throws(
      () => load(['--insecure-dev', '--listen-token-secret', 'short']),
      (error: unknown) =>
        error instanceof ConfigError &&
        /^--listen-token-secret needs secrets of at least 32 characters/.test(error.message),
    );
    assert.throws(
      () => load(['--insecure-dev', '--listen-token-ttl', '59']),
      /--listen-token-ttl must be an integer from 60 to 31536000/,
    );
    assert.throws(
      () => load(['--insecure-dev', '--listen-token-ttl', '31536001']),
      /--listen-token-ttl must be an integer/,
    );
    assert.throws(
      () => load(['--insecure-dev', '--require-listen-tokens']),
      (error: unknown) =>
        error instanceof ConfigError &&
        !error.message.includes('\n') &&
        /^--require-listen-tokens needs --listen-token-secret/.test(error.message),
    );
    assert.throws(
      () => load(['--insecure-dev'], { EPUSH_REQUIRE_LISTEN_TOKENS: '1' }),
      /--require-listen-tokens needs --listen-token-secret/,
    );
    assert.throws(
      () => embeddedConfig({ requireListenTokens: true }),
      /createEpush: requireListenTokens needs --listen-token-secret/,
    );
    assert.equal(
      embeddedConfig({ requireListenTokens: true, listenTokenSecret: ['x'.repeat(32)] })
        .requireListenTokens,
      true,
    );
  });

  test('the abuse-limit flags have their defaults, and env and file set them too', () => {
    const config = load(['--insecure-dev']);
    assert.equal(config.maxConnections, defaultMaxConnections());
    assert.equal(config.maxConnectionsPerIp, 0);
    assert.equal(config.listenStormRequests, 25);
    assert.equal(config.listenStormIntervalMs, 275);
    assert.equal(config.listenStormBackoffMs, 1000);
    assert.equal(config.maxHeaderKb, 16);
    assert.equal(config.maxPayloadKb, 64);
    const set = load(
      ['--insecure-dev', '--max-connections', '0', '--listen-storm-backoff-ms', '0'],
      { EPUSH_MAX_CONNECTIONS_PER_IP: '50', EPUSH_CONFIG: '/l.json' },
      { '/l.json': JSON.stringify({ 'max-header-kb': 8, maxPayloadKb: 32 }) },
    );
    assert.equal(set.maxConnections, 0, '0 = no limit');
    assert.equal(set.listenStormBackoffMs, 0, '0 = detection off');
    assert.equal(set.maxConnectionsPerIp, 50);
    assert.equal(set.maxHeaderKb, 8);
    assert.equal(set.maxPayloadKb, 32);
  });

  test('a bad abuse-limit value names its flag', () => {
    const cases: [string[], Record<string, string>, RegExp][] = [
      [['--max-connections', '-1'], {}, /^--max-connections must be an integer/],
      [['--max-connections', 'many'], {}, /^--max-connections must be an integer/],
      [
        [],
        { EPUSH_MAX_CONNECTIONS_PER_IP: '1.5' },
        /^EPUSH_MAX_CONNECTIONS_PER_IP \(--max-connections-per-ip\)/,
      ],
      [['--listen-storm-requests', '0'], {}, /^--listen-storm-requests must be an integer from 1/],
      [
        ['--listen-storm-interval-ms', '0'],
        {},
        /^--listen-storm-interval-ms must be an integer from 1/,
      ],
      [
        ['--listen-storm-backoff-ms', '60001'],
        {},
        /^--listen-storm-backoff-ms must be an integer from 0 to 60000/,
      ],
      [['--max-header-kb', '0'], {}, /^--max-header-kb must be an integer from 1/],
      [['--max-payload-kb', '65'], {}, /^--max-payload-kb must be an integer from 1 to 64/],
      [['--max-payload-kb', '0'], {}, /^--max-payload-kb/],
    ];
    assertRefusedOnOneLine(cases);
  });

  test('--jms-notify: none by default; a stomp:// URL is taken, anything else refused', () => {
    assert.equal(load(['--insecure-dev'], {}).jmsNotify, '');
    const url = 'stomp://user:pass@127.0.0.1:61613?prefix=shop';
    assert.equal(load(['--insecure-dev', '--jms-notify', url], {}).jmsNotify, url);
    assert.equal(load(['--insecure-dev'], { EPUSH_JMS_NOTIFY: url }).jmsNotify, url);
    assertRefusedOnOneLine([
      [['--jms-notify', 'redis://127.0.0.1:6379'], {}, /^--jms-notify must be a stomp:\/\/ URL/],
      [['--jms-notify', 'stomp://h:1?prefix=a..b'], {}, /^--jms-notify must be a stomp:\/\/ URL/],
    ]);
  });

  test("the connection and header limits are the server's: an embedded epush refuses them", () => {
    for (const name of ['maxConnections', 'maxConnectionsPerIp', 'maxHeaderKb']) {
      assert.throws(() => embeddedConfig({ [name]: 10 }), /is not an option of an embedded epush/);
    }
    assert.equal(embeddedConfig({ maxPayloadKb: 8 }).maxPayloadKb, 8);
    assert.equal(embeddedConfig({ listenStormBackoffMs: 0 }).listenStormBackoffMs, 0);
  });

  test('--max-connections defaults to the open-files limit less a reserve, never below 64', () => {
    const limits = (soft: string) =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax open files            ${soft}                1048576              files\n`;
    assert.equal(defaultMaxConnections(limits('1024')), 1024 - RESERVED_FILE_DESCRIPTORS);
    assert.equal(defaultMaxConnections(limits('1048576')), 1048576 - RESERVED_FILE_DESCRIPTORS);
    assert.equal(defaultMaxConnections(limits('200')), 64);
    assert.equal(defaultMaxConnections(limits('unlimited')), 0, 'unlimited: no limit');
    assert.equal(defaultMaxConnections('no such line'), 0, 'unreadable: no limit');
  });

  test('--help lists every flag with its environment variable', () => {
    const help = helpText();
    for (const spec of Object.values(FLAGS)) {
      assert.ok(help.includes(`--${spec.name}`), spec.name);
      assert.ok(help.includes(envName(spec)), envName(spec));
    }
  });
});
