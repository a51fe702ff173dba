/**
 * Debian's nginx from deploy/nginx/java-app.conf.template: one origin for a Java application
 * server and the epush nodes, on a private port and directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../epush-process.js';
import { freePort } from '../../../testbed/free-port.js';
import { killOnExit } from '../../../testbed/kill-on-exit.js';

const NGINX = '/usr/sbin/nginx';
const TEMPLATE = join(REPO_ROOT, 'deploy', 'nginx', 'java-app.conf.template');

/** Fills the template's fields; fails on a field left without a value. */
export function renderJavaAppProxy(values: {
  readonly prefix: string;
  readonly listen: string;
  readonly nodes: readonly string[];
  readonly app: string;
}): string {
  let conf = readFileSync(TEMPLATE, 'utf8').replace(
    /\{\{NODES ?([^}]*)\}\}/g,
    (_field, params: string) =>
      values.nodes.map((node) => `server ${node} ${params};`).join('\n    '),
  );
  for (const [name, value] of Object.entries({
    PREFIX: values.prefix,
    LISTEN: values.listen,
    APP: values.app,
  })) {
    conf = conf.replaceAll(`{{${name}}}`, value);
  }
  const unfilled = /\{\{[A-Z]+\}\}/.exec(conf);
  if (unfilled) throw new Error(`${TEMPLATE}: field ${unfilled[0]} has no value`);
  return conf;
}

export class JavaAppProxy {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(nodePorts: readonly number[], appPort: number): Promise<JavaAppProxy> {
    if (!existsSync(NGINX)) {
      throw new Error(`${NGINX} is missing: install the Debian package "nginx"`);
    }
    const dir = mkdtempSync(join(tmpdir(), 'epush-java-nginx-'));
    chmodSync(dir, 0o755); // nginx workers may run as another user
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      renderJavaAppProxy({
        prefix: dir,
        listen: `127.0.0.1:${port}`,
        nodes: nodePorts.map((p) => `127.0.0.1:${p}`),
        app: `127.0.0.1:${appPort}`,
      }),
    );
    const child = spawn(
      NGINX,
      ['-p', dir, '-c', conf, '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killOnExit(child, 'SIGTERM');
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nginx did not start: ${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return new JavaAppProxy(child, port, dir);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** nginx's error log so far (for failure messages). */
  log(): string {
    const file = join(this.dir, 'error.log');
    return existsSync(file) ? readFileSync(file, 'utf8') : '';
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

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
