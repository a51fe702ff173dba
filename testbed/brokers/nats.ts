import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port.js';
import { BrokerProcess, waitUntilAnswering } from './broker-process.js';

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
export class PrivateNats extends BrokerProcess {
  private constructor(
    readonly port: number,
    dir: string,
    private readonly options: NatsOptions,
  ) {
    super(dir);
  }

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

  protected async startProcess(): Promise<void> {
    const auth =
      this.options.user === undefined
        ? []
        : ['--user', this.options.user, '--pass', this.options.password ?? ''];
    this.child = spawn(
      NATS_SERVER,
      ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir, ...auth],
      { stdio: 'ignore' },
    );
    await waitUntilAnswering(`nats-server on port ${this.port}`, this.child, () => this.answers());
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
}
