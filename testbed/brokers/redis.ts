import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port.js';
import { BrokerProcess, waitUntilAnswering } from './broker-process.js';

const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisOptions {
  /** Keep the data on disk across restarts (appendonly, fsync always). */
  readonly persistent?: boolean;
  /** Require this password (AUTH). */
  readonly password?: string;
  /** Serve TLS only (`rediss://`), with a throwaway CA made by openssl; see `caFile`. */
  readonly tls?: boolean;
}

/**
 * A private redis-server for one suite: its own free port and directory, never the machine's
 * shared instance. Fails fast, naming the Debian package, when the binary is missing.
 */
export class PrivateRedis extends BrokerProcess {
  private constructor(
    readonly port: number,
    dir: string,
    private readonly options: RedisOptions,
  ) {
    super(dir);
  }

  static async start(options: RedisOptions = {}): Promise<PrivateRedis> {
    if (!existsSync(REDIS_SERVER)) {
      throw new Error(`${REDIS_SERVER} is missing: install the Debian package "redis-server"`);
    }
    const redis: PrivateRedis = new PrivateRedis(
      await freePort(),
      mkdtempSync(join(tmpdir(), 'epush-redis-')),
      options,
    );
    if (options.tls) redis.makeCertificates();
    await redis.startProcess();
    return redis;
  }

  get url(): string {
    const auth =
      this.options.password === undefined ? '' : `:${encodeURIComponent(this.options.password)}@`;
    return `${this.options.tls ? 'rediss' : 'redis'}://${auth}127.0.0.1:${this.port}`;
  }

  protected async startProcess(): Promise<void> {
    const tls = this.options.tls
      ? [
          '--port',
          '0',
          '--tls-port',
          String(this.port),
          '--tls-cert-file',
          join(this.dir, 'server.pem'),
          '--tls-key-file',
          join(this.dir, 'server.key'),
          '--tls-ca-cert-file',
          this.caFile,
          '--tls-auth-clients',
          'no',
        ]
      : ['--port', String(this.port)];
    const persistence = this.options.persistent
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--appendonly', 'no', '--save', ''];
    const auth =
      this.options.password === undefined ? [] : ['--requirepass', this.options.password];
    this.child = spawn(
      REDIS_SERVER,
      [
        ...tls,
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--protected-mode',
        'no',
        ...persistence,
        ...auth,
      ],
      { stdio: 'ignore' },
    );
    await waitUntilAnswering(`redis-server on port ${this.port}`, this.child, () => this.ping());
  }

  /** The CA that signed a TLS server's certificate (give it to clients: NODE_EXTRA_CA_CERTS). */
  get caFile(): string {
    return join(this.dir, 'ca.pem');
  }

  private makeCertificates(): void {
    const openssl = (...args: string[]): void => {
      const result = spawnSync('openssl', args, { cwd: this.dir, encoding: 'utf8' });
      if (result.status !== 0) {
        throw new Error(
          `openssl ${args[0] ?? ''} failed (install the Debian package "openssl"): ${result.stderr}`,
        );
      }
    };
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=epush-test-ca',
    );
    openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=127.0.0.1',
    );
    writeFileSync(join(this.dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    );
  }

  private ping(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket: Socket = this.options.tls
        ? tlsConnect({ port: this.port, host: '127.0.0.1', ca: readFileSync(this.caFile) })
        : connect(this.port, '127.0.0.1');
      socket.once(this.options.tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'));
      socket.once('data', (data) => {
        socket.destroy();
        // A password-protected server answers NOAUTH: it is up all the same.
        resolve(/^(\+PONG|-NOAUTH)/.test(data.toString()));
      });
      socket.once('error', () => {
        resolve(false);
      });
    });
  }

  /** Runs redis-cli against it (for tests that inspect the layout). */
  cli(...args: string[]): string {
    return spawnSync('redis-cli', ['-p', String(this.port), ...args], {
      encoding: 'utf8',
    }).stdout.trim();
  }
}
