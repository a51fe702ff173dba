/**
 * The production deployment files (deploy/systemd, deploy/docker, deploy/kubernetes,
 * .dockerignore) and docs/deploy.md, checked without network: every flag and EPUSH_* variable
 * they name exists, the configuration each produces passes epush's own loader, stop timeouts
 * outlast the drain, health checks point at endpoints that answer, and the files agree with each
 * other (ports, names, labels, the rendered nginx template).
 *
 * What cannot run here: no Docker engine on CI and no Docker Hub, so the image is never built
 * and Compose never started; the Dockerfile's stages are checked as text, and its HEALTHCHECK
 * command is run with Node against a node started from source. Kubernetes manifests are checked
 * for the fields below, not against the API server's schemas (`kubectl kustomize` builds them
 * when kubectl is installed). The YAML is read by test/support/yaml-subset.ts (the project has
 * no YAML dependency), which refuses anything outside the subset the files are written in.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { FLAGS, envName, type EpushConfig } from '../../src/config/flags.js';
import { loadConfig } from '../../src/config/load-config.js';
import { REPO_ROOT, startEpush, type EpushProcess } from '../support/epush-process.js';
import { renderBalancerConfig } from '../support/load-balancer.js';
import { at, listAt, mapAt, readYaml, type Yaml, type YamlMap } from '../support/yaml-subset.js';

const KEY = 'deploy-files-test-key-0123456789';
/** What a node may need to leave the cluster after its drain: a Redis command gives up after 5 s. */
const LEAVE_SECONDS = 5;
const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
const KUBECTL = '/usr/bin/kubectl';

const KNOWN_ENV = new Set([...Object.values(FLAGS).map((spec) => envName(spec)), 'EPUSH_CONFIG']);
const KNOWN_FLAGS = new Set([...Object.values(FLAGS).map((spec) => spec.name), 'config', 'help']);
const PACKAGE = JSON.parse(read('package.json')) as { bin: { epush: string } };

function read(path: string): string {
  return readFileSync(join(REPO_ROOT, path), 'utf8');
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(REPO_ROOT.length))
    .sort();
}

/** The configuration epush would start with; throws ConfigError like `epush start` would. */
function resolveConfig(env: Record<string, string>, argv: readonly string[] = []): EpushConfig {
  return loadConfig({
    argv,
    env,
    readFile: () => {
      throw new Error('the deployment files use no --config file');
    },
  });
}

// --- small readers for the non-YAML formats ---------------------------------------------------

/** `KEY=value` lines of a systemd EnvironmentFile (comments and blank lines skipped). */
function readEnvFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    const match = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    assert.ok(match, `not a plain KEY=value line: ${line}`);
    assert.ok(
      !/^["']/.test(match[2]!),
      `quoted value (systemd strips quotes; keep it plain): ${line}`,
    );
    env[match[1]!] = match[2]!;
  }
  return env;
}

type Unit = Map<string, [string, string][]>;

/** A systemd unit file: section → its `Key=Value` directives in order. */
function readUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: [string, string][] | undefined;
  for (const line of text.replaceAll('\\\n', ' ').split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(trimmed);
    if (header) {
      section = [];
      unit.set(header[1]!, section);
      continue;
    }
    const eq = trimmed.indexOf('=');
    assert.ok(section && eq > 0, `not a directive inside a section: ${line}`);
    section.push([trimmed.slice(0, eq).trim(), trimmed.slice(eq + 1).trim()]);
  }
  return unit;
}

function directives(unit: Unit, section: string, key: string): string[] {
  return (unit.get(section) ?? []).filter(([name]) => name === key).map(([, value]) => value);
}

function directive(unit: Unit, section: string, key: string): string {
  const values = directives(unit, section, key);
  assert.equal(values.length, 1, `[${section}] ${key}= should be set once`);
  return values[0]!;
}

/** systemd or Go (Compose) durations such as 30s, 1min 30s, 1m30s, 90. */
function seconds(text: string): number {
  const units: Record<string, number> = { '': 1, s: 1, sec: 1, m: 60, min: 60, h: 3600 };
  let total = 0;
  const rest = text.replace(
    /(\d+)\s*(min|sec|s|m|h|)(?![a-z])\s*/g,
    (_, n: string, unit: string) => {
      total += Number(n) * units[unit]!;
      return '';
    },
  );
  assert.equal(rest, '', `not a duration: ${text}`);
  return total;
}

interface Instruction {
  readonly op: string;
  readonly args: string;
  /** The stage's name (`AS name`), or its index for an unnamed stage. */
  readonly stage: string;
}

/** Dockerfile instructions, continuation lines joined, comments skipped. */
function readDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (line.trimStart().startsWith('#')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = '';
    if (whole !== '') logical.push(whole);
  }
  let stage = '';
  let stages = 0;
  return logical.map((line) => {
    const space = line.indexOf(' ');
    const op = line.slice(0, space).toUpperCase();
    const args = line.slice(space + 1).trim();
    if (op === 'FROM') stage = /\sAS\s+(\S+)$/i.exec(args)?.[1] ?? String(stages);
    if (op === 'FROM') stages += 1;
    return { op, args, stage };
  });
}

/** `ENV A=1 B=2` instructions of one stage, merged. */
function dockerEnv(instructions: readonly Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { op, args } of instructions) {
    if (op !== 'ENV') continue;
    for (const pair of args.split(/\s+/)) {
      const [name, ...value] = pair.split('=');
      assert.ok(value.length > 0, `ENV in the KEY=value form only: ${args}`);
      env[name!] = value.join('=');
    }
  }
  return env;
}

function str(value: Yaml, what: string): string {
  assert.equal(typeof value, 'string', `${what} should be a string, got ${JSON.stringify(value)}`);
  return value as string;
}

function num(value: Yaml, what: string): number {
  assert.equal(typeof value, 'number', `${what} should be a number, got ${JSON.stringify(value)}`);
  return value as number;
}

// --- the files ------------------------------------------------------------------------------

const UNIT = readUnit(read('deploy/systemd/epush.service'));
const TEMPLATE_UNIT = readUnit(read('deploy/systemd/epush@.service'));
const ENV_FILE = readEnvFile(read('deploy/systemd/epush.env'));
const DOCKERFILE = readDockerfile(read('deploy/docker/Dockerfile'));
const RUNTIME_STAGE = DOCKERFILE.filter(({ stage }) => stage === DOCKERFILE.at(-1)!.stage);
const IMAGE_ENV = dockerEnv(RUNTIME_STAGE);
const COMPOSE = mapAt(readYaml(read('deploy/docker/compose.yaml'), 'compose.yaml')[0]!, '');
const K8S_DIR = 'deploy/kubernetes';
const K8S: Record<string, YamlMap> = Object.fromEntries(
  readdirSync(join(REPO_ROOT, K8S_DIR))
    .filter((name) => name.endsWith('.yaml'))
    .map((name) => {
      const docs = readYaml(read(`${K8S_DIR}/${name}`), name);
      assert.equal(docs.length, 1, `${name}: one document per file`);
      return [name, mapAt(docs[0]!, '')];
    }),
);

function k8s(kind: string): YamlMap {
  const found = Object.values(K8S).filter((doc) => doc.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind} in ${K8S_DIR}`);
  return found[0]!;
}

describe('deployment files', () => {
  test('the YAML subset reader reads what the files use and refuses the rest', () => {
    const sample = [
      '# comment',
      'a: 1 # trailing',
      'b:',
      '  - x',
      "  - 'y # not a comment'",
      '  - name: n',
      '    value: "v: w"',
      'c:',
      '- 8080',
      'd:',
      '  e: true',
      '  f:',
      '  g: []',
      "  'h.i': redis://r:6379",
    ].join('\n');
    assert.deepEqual(readYaml(sample, 'sample'), [
      {
        a: 1,
        b: ['x', 'y # not a comment', { name: 'n', value: 'v: w' }],
        c: [8080],
        d: { e: true, f: null, g: [], 'h.i': 'redis://r:6379' },
      },
    ]);
    for (const bad of [
      'a: &anchor 1',
      'a: |\n  text',
      'a: {b: 1}',
      'a:\n  b: 1\n   c: 2',
      'a: 1\na: 2',
      'a: b: c',
      'a:\n\t- b',
    ]) {
      assert.throws(() => readYaml(bad, 'bad'), /^Error: bad:\d+: /, bad);
    }
  });

  describe('names', () => {
    // Ours only: the load-balancer templates (deploy/nginx, haproxy, apache) have their own tests.
    const files = [
      ...filesUnder('deploy/systemd'),
      ...filesUnder('deploy/docker'),
      ...filesUnder('deploy/kubernetes'),
      '.dockerignore',
      'docs/deploy.md',
    ];

    test('every EPUSH_* variable named in the files and docs/deploy.md is one of epush', () => {
      let seen = 0;
      for (const file of files) {
        for (const [name] of read(file).matchAll(/\bEPUSH_[A-Z0-9_]*[A-Z0-9]/g)) {
          seen += 1;
          assert.ok(KNOWN_ENV.has(name), `${file} names ${name}, which epush does not read`);
        }
      }
      assert.ok(seen > 30, `only ${seen} EPUSH_* names found: is the scan looking anywhere?`);
    });

    test('every flag on an `epush start` command line in them is a flag of epush', () => {
      let seen = 0;
      for (const file of files) {
        for (const line of read(file).split('\n')) {
          const start = /(?:\bepush|main\.js)["',\s]+start\b(.*)$/.exec(line);
          for (const [, name] of start?.[1]?.matchAll(/--([a-z][a-z0-9-]*)/g) ?? []) {
            seen += 1;
            assert.ok(KNOWN_FLAGS.has(name!), `${file}: --${name!} is not a flag of epush start`);
          }
        }
      }
      assert.ok(seen >= 3, `only ${seen} flags found on epush start lines`);
    });

    test('docs/deploy.md names every deployment file and load-balancer template', () => {
      const doc = read('docs/deploy.md');
      assert.match(doc, /^# Deploying epush\n/);
      for (const section of ['## Load balancers', '### nginx', '### HAProxy', '### Apache httpd']) {
        assert.ok(doc.includes(`\n${section}\n`), `docs/deploy.md has no "${section}" section`);
      }
      const ours = [
        ...filesUnder('deploy/nginx'),
        ...filesUnder('deploy/haproxy'),
        ...filesUnder('deploy/apache'),
        ...filesUnder('deploy/systemd'),
        ...filesUnder('deploy/docker'),
        ...filesUnder('deploy/kubernetes'),
      ];
      for (const file of ours) {
        const name = file.endsWith('.template') ? file : file.split('/').at(-1)!;
        assert.ok(doc.includes(name), `docs/deploy.md does not mention ${file}`);
      }
    });
  });

  describe('systemd', () => {
    const config = resolveConfig({ ...ENV_FILE, EPUSH_API_KEY: KEY });

    test('epush.env is plain EPUSH_* lines that epush accepts once a key is set', () => {
      for (const name of Object.keys(ENV_FILE)) {
        assert.ok(KNOWN_ENV.has(name) || name.startsWith('NODE_'), `epush.env sets ${name}`);
      }
      // Shipped without a key on purpose: the node must refuse to start until one is set.
      assert.equal(ENV_FILE.EPUSH_API_KEY, '');
      assert.throws(() => resolveConfig(ENV_FILE), /--api-key is required/);
      assert.match(config.backplane, /^rediss?:\/\//, 'a cluster needs a shared backplane');
      assert.equal(config.host, '0.0.0.0');
    });

    test('epush.service runs the built CLI with the environment file and outlasts the drain', () => {
      assert.equal(directive(UNIT, 'Service', 'EnvironmentFile'), '/etc/epush/epush.env');
      assert.equal(
        directive(UNIT, 'Service', 'ExecStart'),
        `/usr/bin/node /opt/epush/${PACKAGE.bin.epush} start`,
      );
      assert.equal(PACKAGE.bin.epush, 'dist/src/cli/main.js');
      assert.equal(directive(UNIT, 'Service', 'KillSignal'), 'SIGTERM');
      // The primary of --workers forwards SIGTERM; the workers must not get it twice.
      assert.equal(directive(UNIT, 'Service', 'KillMode'), 'mixed');
      assert.equal(directive(UNIT, 'Service', 'Restart'), 'on-failure');
      assert.ok(directive(UNIT, 'Service', 'RestartPreventExitStatus').split(/\s+/).includes('2'));
      const stop = seconds(directive(UNIT, 'Service', 'TimeoutStopSec'));
      assert.ok(
        stop > config.drainSeconds + LEAVE_SECONDS,
        `TimeoutStopSec ${stop}s does not outlast --drain-seconds ${config.drainSeconds} + ${LEAVE_SECONDS}`,
      );
      assert.ok(Number(directive(UNIT, 'Service', 'LimitNOFILE')) >= 65536, 'LimitNOFILE');
      for (const [key, value] of [
        ['DynamicUser', 'yes'],
        ['NoNewPrivileges', 'yes'],
        ['ProtectSystem', 'strict'],
        ['ProtectHome', 'yes'],
        ['PrivateTmp', 'yes'],
        ['CapabilityBoundingSet', ''],
      ] as const) {
        assert.equal(directive(UNIT, 'Service', key), value, key);
      }
      assert.deepEqual(directives(UNIT, 'Service', 'MemoryDenyWriteExecute'), [], 'V8 needs W+X');
    });

    test('epush@.service differs only in its command line, which epush accepts', () => {
      const without = (unit: Unit, section: string, key: string): [string, string][] =>
        (unit.get(section) ?? []).filter(([name]) => name !== key);
      assert.deepEqual(
        without(TEMPLATE_UNIT, 'Service', 'ExecStart'),
        without(UNIT, 'Service', 'ExecStart'),
      );
      assert.deepEqual(
        without(TEMPLATE_UNIT, 'Unit', 'Description'),
        without(UNIT, 'Unit', 'Description'),
      );
      assert.deepEqual(TEMPLATE_UNIT.get('Install'), UNIT.get('Install'));
      const exec = directive(TEMPLATE_UNIT, 'Service', 'ExecStart')
        .replaceAll('%i', '8081')
        .replaceAll('%H', 'host1.example');
      const prefix = `${directive(UNIT, 'Service', 'ExecStart')} `;
      assert.ok(exec.startsWith(prefix), exec);
      const instance = resolveConfig(
        { ...ENV_FILE, EPUSH_API_KEY: KEY },
        exec.slice(prefix.length).split(/\s+/),
      );
      assert.equal(instance.port, 8081);
      assert.equal(instance.nodeId, 'host1.example-8081');
      assert.equal(instance.workers, 1);
    });

    const requireAnalyze = (): void => {
      if (!existsSync(SYSTEMD_ANALYZE)) {
        throw new Error(`${SYSTEMD_ANALYZE} is missing: install the Debian package "systemd"`);
      }
    };

    test('systemd-analyze verify accepts both units and an instance', () => {
      requireAnalyze();
      const dir = mkdtempSync(join(tmpdir(), 'epush-units-'));
      try {
        const instance = join(dir, 'epush@8081.service');
        copyFileSync(join(REPO_ROOT, 'deploy/systemd/epush@.service'), instance);
        for (const unit of [
          join(REPO_ROOT, 'deploy/systemd/epush.service'),
          join(REPO_ROOT, 'deploy/systemd/epush@.service'),
          instance,
        ]) {
          const run = spawnSync(SYSTEMD_ANALYZE, ['verify', unit], { encoding: 'utf8' });
          // Unknown keys and bad values are warnings with exit 0: any output is a failure.
          assert.equal(`${run.stdout}${run.stderr}`, '', unit);
          assert.equal(run.status, 0, unit);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('systemd-analyze security rates the hardening 2.0 or better', () => {
      requireAnalyze();
      for (const unit of ['epush.service', 'epush@.service']) {
        const run = spawnSync(
          SYSTEMD_ANALYZE,
          ['security', '--offline=true', '--threshold=20', join(REPO_ROOT, 'deploy/systemd', unit)],
          { encoding: 'utf8' },
        );
        assert.equal(run.status, 0, `${unit}:\n${run.stdout.split('\n').slice(-3).join('\n')}`);
      }
    });
  });

  describe('Docker', () => {
    const ops = (op: string, stage?: string): string[] =>
      DOCKERFILE.filter((i) => i.op === op && (stage === undefined || i.stage === stage)).map(
        (i) => i.args,
      );
    const runtime = (op: string): string[] =>
      RUNTIME_STAGE.filter((i) => i.op === op).map((i) => i.args);

    test('the image builds in stages and runs only the built CLI, as a non-root user', () => {
      assert.deepEqual(ops('FROM'), [
        'node:20-bookworm-slim AS build',
        'node:20-bookworm-slim AS deps',
        'node:20-bookworm-slim',
      ]);
      assert.ok(ops('RUN', 'build').some((run) => run.startsWith('npm ci ')));
      assert.ok(ops('RUN', 'build').includes('npm run build'));
      assert.ok(ops('RUN', 'deps').some((run) => /^npm ci .*--omit=dev/.test(run)));
      assert.deepEqual(runtime('RUN'), [], 'the runtime stage only copies');
      const copies = runtime('COPY');
      for (const wanted of [
        'package.json ./', // "type": "module" for dist/, and the root the server looks for
        '--from=deps /app/node_modules ./node_modules',
        '--from=build /src/dist/src ./dist/src',
        '--from=build /src/client/dist ./client/dist', // /epush.js
        '--from=build /src/dist/admin ./dist/admin', // /admin/dashboard.js
      ]) {
        assert.ok(copies.includes(wanted), `runtime stage lacks COPY ${wanted}`);
      }
      assert.deepEqual(ops('WORKDIR', 'build'), ['/src']);
      assert.deepEqual(JSON.parse(runtime('ENTRYPOINT')[0] ?? 'null'), [
        'node',
        PACKAGE.bin.epush,
        'start',
      ]);
      const user = runtime('USER')[0] ?? 'root';
      assert.match(user, /^\d+(:\d+)?$/, 'numeric, so that runAsNonRoot can check it');
      assert.notEqual(Number(user.split(':')[0]), 0);
      assert.deepEqual(runtime('STOPSIGNAL'), ['SIGTERM']);
      const config = resolveConfig({ ...IMAGE_ENV, EPUSH_API_KEY: KEY });
      assert.equal(config.host, '0.0.0.0');
      assert.deepEqual(runtime('EXPOSE'), [String(config.port)]);
    });

    test('.dockerignore lets in exactly what the build copies from the context', () => {
      const ignore = read('.dockerignore')
        .split('\n')
        .filter((line) => line.trim() !== '' && !line.startsWith('#'));
      assert.equal(ignore[0], '*', 'an allow-list');
      const sources = ops('COPY')
        .filter((args) => !args.startsWith('--from'))
        .flatMap((args) => args.split(/\s+/).slice(0, -1));
      for (const source of new Set(sources)) {
        assert.ok(existsSync(join(REPO_ROOT, source)), `COPY ${source}: no such file`);
        assert.ok(ignore.includes(`!${source}`), `.dockerignore does not let in ${source}`);
      }
      for (const needed of ['tsconfig.json', 'tsconfig.build.json', 'src', 'client']) {
        assert.ok(sources.includes(needed), `npm run build needs ${needed}`);
      }
    });

    describe('health checks against a real node', () => {
      let node: EpushProcess;
      before(async () => {
        node = await startEpush(['--insecure-dev']);
      });
      after(async () => {
        await node.stop();
      });

      /** The HEALTHCHECK's own command, run as Docker would but with this machine's node. */
      function healthcheck(port: number): number | null {
        const args = runtime('HEALTHCHECK')[0] ?? '';
        const cmd = /\bCMD\s+(\[.*\])$/.exec(args);
        assert.ok(cmd, `HEALTHCHECK in exec form: ${args}`);
        const [program, ...rest] = JSON.parse(cmd[1]!) as string[];
        assert.equal(program, 'node', 'the slim image has no curl');
        assert.ok(rest.join(' ').includes('/readyz'), 'ready, not merely alive');
        const run = spawnSync(process.execPath, rest, {
          env: { PATH: process.env.PATH, EPUSH_PORT: String(port) },
          timeout: 10_000,
        });
        return run.status;
      }

      test('the Kubernetes probes ask paths that answer 200', async (t) => {
        const container = mapAt(k8s('Deployment'), 'spec.template.spec.containers[0]');
        for (const probe of ['readinessProbe', 'livenessProbe']) {
          const path = str(at(container, `${probe}.httpGet.path`), probe);
          const answer = await fetch(`${node.url}${path}`);
          t.diagnostic(`${probe} ${path}: ${answer.status}`);
          assert.equal(answer.status, 200, `${probe} ${path}`);
        }
      });

      // Last: it stops the node.
      test('HEALTHCHECK exits 0 on a ready node and 1 when it is gone', async () => {
        let status = healthcheck(node.port);
        for (let tries = 0; status !== 0 && tries < 20; tries++) {
          await new Promise((done) => setTimeout(done, 100));
          status = healthcheck(node.port);
        }
        assert.equal(status, 0);
        await node.stop();
        assert.equal(healthcheck(node.port), 1);
      });
    });
  });

  describe('Compose', () => {
    const services = mapAt(COMPOSE, 'services');
    const nodes = Object.keys(services).filter((name) => /^epush\d+$/.test(name));
    const service = (name: string): YamlMap => mapAt(services, name);
    const nodeEnv = (name: string): Record<string, string> => {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries(mapAt(service(name), 'environment'))) {
        env[key] = str(value, `${name} ${key}`);
      }
      return env;
    };
    /** The node's configuration: the image's ENV under the service's, the key filled in. */
    const nodeConfig = (name: string): EpushConfig => {
      const env = nodeEnv(name);
      assert.match(env.EPUSH_API_KEY ?? '', /^\$\{EPUSH_API_KEY:\?.+\}$/, 'key from the caller');
      return resolveConfig({ ...IMAGE_ENV, ...env, EPUSH_API_KEY: KEY });
    };

    test('three epush nodes, identical but for their node id', () => {
      assert.deepEqual(nodes, ['epush1', 'epush2', 'epush3']);
      const strip = (name: string): YamlMap => {
        const copy = structuredClone(service(name));
        delete mapAt(copy, 'environment').EPUSH_NODE_ID;
        return copy;
      };
      for (const name of nodes) {
        assert.deepEqual(strip(name), strip(nodes[0]!), `${name} drifted from ${nodes[0]!}`);
        assert.equal(nodeConfig(name).nodeId, name);
      }
    });

    test('each node builds the Dockerfile, uses the Redis service and outlasts its drain', () => {
      for (const name of nodes) {
        const build = mapAt(service(name), 'build');
        assert.equal(
          resolve(REPO_ROOT, 'deploy/docker', str(build.context!, 'context')),
          resolve(REPO_ROOT),
        );
        assert.equal(str(build.dockerfile!, 'dockerfile'), 'deploy/docker/Dockerfile');
        const config = nodeConfig(name);
        const redis = /^redis:\/\/([^:/]+)/.exec(config.backplane)?.[1];
        assert.ok(redis && redis in services, `${name}: backplane ${config.backplane}`);
        const grace = seconds(str(at(service(name), 'stop_grace_period'), 'stop_grace_period'));
        assert.ok(grace > config.drainSeconds + LEAVE_SECONDS, `${name}: stop_grace_period`);
        assert.ok(num(at(service(name), 'ulimits.nofile'), 'nofile') >= 65536);
        assert.equal(at(service(name), 'read_only'), true);
        assert.equal(mapAt(service(name), 'depends_on.redis').condition, 'service_healthy');
      }
      const command = listAt(service('redis'), 'command')
        .map((word) => str(word, 'redis command'))
        .join(' ');
      assert.match(command, /--appendonly yes --appendfsync always/, 'a 202 survives a restart');
    });

    test('nginx.conf is deploy/nginx/epush.conf.template rendered for these nodes', () => {
      const nginx = service('nginx');
      assert.ok(listAt(nginx, 'volumes').includes('./nginx.conf:/etc/nginx/nginx.conf:ro'));
      for (const name of nodes) {
        assert.equal(mapAt(nginx, `depends_on.${name}`).condition, 'service_healthy');
      }
      const listen = '0.0.0.0:8080';
      assert.ok(str(listAt(nginx, 'ports')[0]!, 'ports').endsWith(`:${listen.split(':')[1]!}`));
      const rendered = renderBalancerConfig('nginx', {
        prefix: '/tmp',
        listen,
        nodes: nodes.map((name) => `${name}:${nodeConfig(name).port}`),
      });
      const file = 'deploy/docker/nginx.conf';
      const current = read(file);
      // Our own comment block comes first and ends with a line that is just "#".
      const end = current.indexOf('\n#\n');
      assert.ok(end > 0, `${file}: a header comment ending with a "#" line`);
      const expected = current.slice(0, end + 3) + rendered;
      // EPUSH_RENDER_NGINX=1 writes the fresh rendering (after a change to the template).
      if (process.env.EPUSH_RENDER_NGINX === '1') writeFileSync(join(REPO_ROOT, file), expected);
      assert.equal(
        read(file),
        expected,
        `${file} is stale: rerun with EPUSH_RENDER_NGINX=1 to render the template again`,
      );
    });
  });

  describe('Kubernetes', () => {
    const deployment = k8s('Deployment');
    const pod = mapAt(deployment, 'spec.template.spec');
    const container = mapAt(pod, 'containers[0]');
    const configMap = k8s('ConfigMap');
    const secret = k8s('Secret');
    const podLabels = mapAt(deployment, 'spec.template.metadata.labels');

    test('every manifest starts with a comment and names its kind', () => {
      for (const [name, doc] of Object.entries(K8S)) {
        assert.match(read(`${K8S_DIR}/${name}`), /^# \S/, `${name}: a comment first`);
        assert.equal(typeof doc.kind, 'string', name);
        if (doc.kind !== 'Kustomization') assert.equal(typeof at(doc, 'metadata.name'), 'string');
      }
    });

    test('the kustomization applies every manifest but the example Secret', () => {
      const listed = listAt(k8s('Kustomization'), 'resources').map((r) => str(r, 'resource'));
      const manifests = Object.keys(K8S).filter(
        (name) => name !== 'kustomization.yaml' && K8S[name]!.kind !== 'Secret',
      );
      assert.deepEqual([...listed].sort(), manifests.sort());
    });

    test('the pods start with a configuration epush accepts, secrets from the Secret', () => {
      const env: Record<string, string> = { ...IMAGE_ENV };
      for (const [key, value] of Object.entries(mapAt(configMap, 'data'))) {
        env[key] = str(value, `ConfigMap ${key} (Kubernetes wants strings)`);
      }
      assert.deepEqual(listAt(container, 'envFrom'), [
        { configMapRef: { name: at(configMap, 'metadata.name') } },
      ]);
      const fromSecret: string[] = [];
      for (const entry of listAt(container, 'env')) {
        const name = str(at(entry, 'name'), 'env name');
        const item = mapAt(entry, '');
        if ('value' in item) env[name] = str(item.value, name);
        else if ('secretKeyRef' in mapAt(item, 'valueFrom')) {
          const ref = mapAt(item, 'valueFrom.secretKeyRef');
          assert.equal(ref.name, at(secret, 'metadata.name'), `${name}: the Secret's name`);
          env[name] = str(at(secret, `stringData.${str(ref.key!, 'key')}`), `${name} key`);
          fromSecret.push(name);
        } else {
          assert.equal(at(item, 'valueFrom.fieldRef.fieldPath'), 'metadata.name', name);
          env[name] = 'epush-7c9d5b6f4-x2x7q';
        }
      }
      assert.deepEqual(fromSecret.sort(), ['EPUSH_API_KEY', 'EPUSH_BACKPLANE']);
      const config = resolveConfig(env);
      assert.match(config.backplane, /^rediss?:\/\//);
      assert.equal(config.host, '0.0.0.0');
      assert.deepEqual(listAt(container, 'ports'), [{ name: 'http', containerPort: config.port }]);
      // Service links would put EPUSH_PORT=tcp://… (the Service "epush") into the pods' env.
      assert.equal(pod.enableServiceLinks, false);
    });

    test('3 replicas, probes on /readyz and /healthz, and a grace period beyond the drain', () => {
      assert.equal(at(deployment, 'spec.replicas'), 3);
      assert.deepEqual(at(deployment, 'spec.selector.matchLabels'), podLabels);
      assert.deepEqual(at(container, 'readinessProbe.httpGet'), { path: '/readyz', port: 'http' });
      assert.deepEqual(at(container, 'livenessProbe.httpGet'), { path: '/healthz', port: 'http' });
      assert.equal(at(deployment, 'spec.strategy.rollingUpdate.maxUnavailable'), 0);
      const drain = Number(str(at(configMap, 'data.EPUSH_DRAIN_SECONDS'), 'drain'));
      const preStop = listAt(container, 'lifecycle.preStop.exec.command');
      assert.equal(preStop[0], 'sleep');
      const pause = Number(str(preStop[1]!, 'sleep seconds'));
      const grace = num(at(pod, 'terminationGracePeriodSeconds'), 'grace');
      assert.ok(
        grace > pause + drain + LEAVE_SECONDS,
        `terminationGracePeriodSeconds ${grace} <= preStop ${pause} + drain ${drain} + ${LEAVE_SECONDS}`,
      );
    });

    test('non-root, read-only, no escalation, with resources', () => {
      const imageUser = Number(
        (RUNTIME_STAGE.find((i) => i.op === 'USER')?.args ?? '0').split(':')[0],
      );
      assert.equal(at(pod, 'securityContext.runAsNonRoot'), true);
      assert.equal(at(pod, 'securityContext.runAsUser'), imageUser);
      assert.equal(at(container, 'securityContext.readOnlyRootFilesystem'), true);
      assert.equal(at(container, 'securityContext.allowPrivilegeEscalation'), false);
      assert.deepEqual(at(container, 'securityContext.capabilities.drop'), ['ALL']);
      for (const path of ['requests.cpu', 'requests.memory', 'limits.memory']) {
        str(at(container, `resources.${path}`), path);
      }
    });

    test('the Service and the PodDisruptionBudget select the pods', () => {
      const service = k8s('Service');
      assert.deepEqual(at(service, 'spec.selector'), podLabels);
      assert.equal(at(service, 'spec.ports[0].targetPort'), 'http');
      assert.ok(!('sessionAffinity' in mapAt(service, 'spec')), 'no stickiness needed');
      const pdb = k8s('PodDisruptionBudget');
      assert.equal(at(pdb, 'spec.maxUnavailable'), 1);
      assert.deepEqual(at(pdb, 'spec.selector.matchLabels'), podLabels);
    });

    // kubectl is not a Debian package: this machine kind ships it, others may not. Everything this
    // test reads is also checked above by our own reader; this is a second opinion, skipped
    // (and reported as skipped) where kubectl is absent.
    const noKubectl = existsSync(KUBECTL) ? false : `${KUBECTL} is not installed`;
    test('kubectl kustomize builds the kustomization', { skip: noKubectl }, () => {
      const run = spawnSync(KUBECTL, ['kustomize', join(REPO_ROOT, K8S_DIR)], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      assert.equal(run.status, 0, run.stderr);
      const kinds = [...run.stdout.matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]).sort();
      assert.deepEqual(kinds, ['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service']);
    });
  });
});
