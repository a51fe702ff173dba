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
import { freePort } from './free-port.js';

const NGINX = '/usr/sbin/nginx';
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGTERM');
});

const TEMPLATE = fileURLToPath(new URL('../../deploy/nginx/epush.conf.template', import.meta.url));

/**
 * A real nginx in front of epush nodes, configured from deploy/nginx/epush.conf.template on a
 * private port and directory. Fails fast, naming the Debian package, when nginx is missing.
 */
export class NginxBalancer {
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(backends: readonly number[]): Promise<NginxBalancer> {
    if (!existsSync(NGINX))
      throw new Error(`${NGINX} is missing: install the Debian package "nginx"`);
    const dir = mkdtempSync(join(tmpdir(), 'epush-nginx-'));
    mkdirSync(join(dir, 'logs'));
    chmodSync(dir, 0o755); // nginx workers run as an unprivileged user and must reach temp dirs
    const port = await freePort();
    const servers = backends
      .map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`)
      .join('\n    ');
    const conf = readFileSync(TEMPLATE, 'utf8')
      .replaceAll('{{PREFIX}}', dir)
      .replaceAll('{{LISTEN}}', `127.0.0.1:${port}`)
      .replaceAll('{{SERVERS}}', servers);
    writeFileSync(join(dir, 'nginx.conf'), conf);
    const child = spawn(
      NGINX,
      ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log'), '-g', 'daemon off;'],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    running.add(child);
    child.once('exit', () => running.delete(child));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const deadline = Date.now() + 10_000;
    while (!(await reachable(port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`nginx did not start: ${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return new NginxBalancer(child, port, dir);
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
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
