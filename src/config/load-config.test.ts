import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FLAGS, envName } from './flags.js';
import { ConfigError, helpText, loadConfig } from './load-config.js';

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

  test('--help lists every flag with its environment variable', () => {
    const help = helpText();
    for (const spec of Object.values(FLAGS)) {
      assert.ok(help.includes(`--${spec.name}`), spec.name);
      assert.ok(help.includes(envName(spec)), envName(spec));
    }
  });
});
