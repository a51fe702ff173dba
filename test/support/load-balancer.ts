/**
 * Real load balancers in front of epush nodes, each configured from its template in deploy/
 * (so a broken template fails the tests) on a private port and directory: Debian's nginx,
 * haproxy and apache2. Each fails fast, naming the Debian package, when its binary is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../testbed/free-port.js';
import { killOnExit } from '../../testbed/kill-on-exit.js';

export type BalancerKind = 'nginx' | 'haproxy' | 'apache';

interface Recipe {
  readonly binary: string;
  readonly debianPackage: string;
  readonly template: string;
  /** One line of a NODES field: the node at `address` (host:port) with the field's parameters. */
  server(address: string, index: number, params: string): string;
  /** Extra template fields. */
  readonly fields?: Readonly<Record<string, string>>;
  args(dir: string, conf: string): string[];
}

function template(path: string): string {
  return fileURLToPath(new URL(`../../deploy/${path}`, import.meta.url));
}

const RECIPES: Record<BalancerKind, Recipe> = {
  nginx: {
    binary: '/usr/sbin/nginx',
    debianPackage: 'nginx',
    template: template('nginx/epush.conf.template'),
    server: (address, _index, params) => `server ${address} ${params};`,
    args: (dir, conf) => ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
  },
  haproxy: {
    binary: '/usr/sbin/haproxy',
    debianPackage: 'haproxy',
    template: template('haproxy/epush.cfg.template'),
    server: (address, index, params) => `server node${index + 1} ${address} ${params}`,
    // -db: stay in the foreground; -W: master-worker, so SIGTERM stops the workers too.
    args: (_dir, conf) => ['-W', '-db', '-f', conf],
  },
  apache: {
    binary: '/usr/sbin/apache2',
    debianPackage: 'apache2',
    template: template('apache/epush.conf.template'),
    server: (address, _index, params) => `BalancerMember http://${address} ${params}`,
    fields: { MODULES: '/usr/lib/apache2/modules', USER: 'www-data' },
    args: (_dir, conf) => ['-f', conf, '-DFOREGROUND'],
  },
};

/**
 * Fills a deploy/ template: PREFIX, LISTEN, the balancer's own fields, and each NODES field
 * (NODES plus parameters, in double braces) with one line per node.
 */
export function renderBalancerConfig(
  kind: BalancerKind,
  values: { readonly prefix: string; readonly listen: string; readonly nodes: readonly string[] },
): string {
  const recipe = RECIPES[kind];
  const fields: Record<string, string> = {
    PREFIX: values.prefix,
    LISTEN: values.listen,
    ...recipe.fields,
  };
  let conf = readFileSync(recipe.template, 'utf8').replace(
    /\{\{NODES ?([^}]*)\}\}/g,
    (_field, params: string) =>
      values.nodes.map((node, i) => recipe.server(node, i, params).trimEnd()).join('\n    '),
  );
  for (const [name, value] of Object.entries(fields)) conf = conf.replaceAll(`{{${name}}}`, value);
  const unfilled = /\{\{[A-Z]+\}\}/.exec(conf);
  if (unfilled) throw new Error(`${recipe.template}: field ${unfilled[0]} has no value`);
  return conf;
}

/** One running load balancer; stop it with `stop()` (SIGTERM, so its workers go too). */
export class Balancer {
  private constructor(
    readonly kind: BalancerKind,
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
    private readonly stderr: () => string,
  ) {}

  /** `edit` changes the rendered config (tests of misconfigured proxies). */
  static async start(
    kind: BalancerKind,
    backends: readonly number[],
    edit: (config: string) => string = (config) => config,
  ): Promise<Balancer> {
    const recipe = RECIPES[kind];
    if (!existsSync(recipe.binary)) {
      throw new Error(
        `${recipe.binary} is missing: install the Debian package "${recipe.debianPackage}"`,
      );
    }
    const dir = mkdtempSync(join(tmpdir(), `epush-${kind}-`));
    mkdirSync(join(dir, 'logs'));
    chmodSync(dir, 0o755); // workers run as an unprivileged user and must reach temp dirs
    const port = await freePort();
    const conf = edit(
      renderBalancerConfig(kind, {
        prefix: dir,
        listen: `127.0.0.1:${port}`,
        nodes: backends.map((p) => `127.0.0.1:${p}`),
      }),
    );
    const confPath = join(dir, 'balancer.conf');
    writeFileSync(confPath, conf);
    const child = spawn(recipe.binary, recipe.args(dir, confPath), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    killOnExit(child, 'SIGTERM');
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        const log = existsSync(join(dir, 'error.log'))
          ? readFileSync(join(dir, 'error.log'), 'utf8')
          : '';
        throw new Error(`${kind} did not start: ${output}${log}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return new Balancer(kind, child, port, dir, () => output);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What the balancer printed and logged so far (for failure messages). */
  log(): string {
    const errorLog = join(this.dir, 'error.log');
    return this.stderr() + (existsSync(errorLog) ? readFileSync(errorLog, 'utf8') : '');
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // SIGTERM: the master stops its workers (a SIGKILLed master would orphan them, still bound).
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** nginx from deploy/nginx/epush.conf.template. */
export type NginxBalancer = Balancer;
export const NginxBalancer = {
  start: (backends: readonly number[]): Promise<Balancer> => Balancer.start('nginx', backends),
};

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}
