import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port.js';

const NATS_SERVER = '/usr/sbin/nats-server';

export interface NatsOptions {
  /** Require this user and password (given in the URL as `user:pass@`). */
  readonly user?: string;
  readonly password?: string;
}

/**
 * A private nats-server with JetStream for one suite: its own free port on 127.0.0.1 and its own
 * store directory, never the machine's shared server on 4222. Fails fast, naming the Debian
 * package, when the binary is missing.
 */
export class PrivateNats {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly options: NatsOptions,
  ) {}

  static async start(options: NatsOptions = {}): Promise<PrivateNats> {
    if (!existsSync(NATS_SERVER)) {
      throw new Error(`${NATS_SERVER} is missing: install the Debian package "nats-server"`);
    }
    const nats = new PrivateNats(
      await freePort(),
      mkdtempSync(join(tmpdir(), 'epush-nats-')),
      options,
    );
    await nats.startProcess();
    return nats;
  }

  get url(): string {
    const { user, password } = this.options;
    const auth =
      user === undefined
        ? ''
        : `${encodeURIComponent(user)}:${encodeURIComponent(password ?? '')}@`;
    return `nats://${auth}127.0.0.1:${this.port}`;
  }

  private async startProcess(): Promise<void> {
    const auth =
      this.options.user === undefined
        ? []
        : ['--user', this.options.user, '--pass', this.options.password ?? ''];
    this.child = spawn(
      NATS_SERVER,
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir, ...auth],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (!(await this.answers())) {
      if (this.child.exitCode !== null) {
        throw new Error(`nats-server on port ${this.port} exited with ${this.child.exitCode}`);
      }
      if (Date.now() > deadline) throw new Error(`nats-server on port ${this.port} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** True once the server greets a client with its INFO line. */
  private answers(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.port, '127.0.0.1');
      socket.once('data', (data) => {
        socket.destroy();
        resolve(data.toString().startsWith('INFO '));
      });
      socket.once('error', () => {
        resolve(false);
      });
    });
  }

  /** Stops the server (SIGKILL: nothing gets a goodbye). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    this.child = null;
  }

  /** SIGKILL, then start again on the same port and store directory (JetStream data kept). */
  async restart(): Promise<void> {
    await this.kill();
    await this.startProcess();
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
