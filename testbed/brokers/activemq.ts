/**
 * A private ActiveMQ Classic broker (Debian package "activemq", 5.17) for one suite: its own
 * temp directory, config and KahaDB store, free ports on 127.0.0.1, STOMP and OpenWire only,
 * a user and password required. It is started straight from the package's launcher jar, never
 * through /etc/init.d/activemq or /etc/activemq, so the machine's own instances are not touched.
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port.js';
import { BrokerProcess } from './broker-process.js';

/** The package's launcher (org.apache.activemq.console.Main); it finds lib/ from activemq.home. */
const ACTIVEMQ_HOME = '/usr/share/activemq';
const LAUNCHER = join(ACTIVEMQ_HOME, 'bin', 'activemq.jar');

/**
 * What the Debian start script passes to a Java 9+ JVM (Spring and XBean reflect into the JDK),
 * plus flags that make a short-lived test broker start sooner (about 1.1 s instead of 1.3 to
 * 2.8 s with Debian's -Xms512M on a loaded 2-core box): a small heap, the client JIT only, the
 * serial collector, no perf-data file.
 */
const JVM_FLAGS = [
  '-Xms64m',
  '-Xmx256m',
  '-XX:TieredStopAtLevel=1',
  '-XX:+UseSerialGC',
  '-XX:-UsePerfData',
  '-Djava.awt.headless=true',
  '--add-reads=java.xml=java.logging',
  '--add-opens=java.base/java.security=ALL-UNNAMED',
  '--add-opens=java.base/java.net=ALL-UNNAMED',
  '--add-opens=java.base/java.lang=ALL-UNNAMED',
  '--add-opens=java.base/java.util=ALL-UNNAMED',
  '--add-opens=java.naming/javax.naming.spi=ALL-UNNAMED',
  '--add-opens=java.rmi/sun.rmi.transport.tcp=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent=ALL-UNNAMED',
  '--add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED',
];

/** STOMP 1.2 header value escaping (a password may hold a colon or a backslash). */
function stompEscape(value: string): string {
  return value.replace(
    /[\\\n\r:]/g,
    (c) => ({ '\\': '\\\\', '\n': '\\n', '\r': '\\r', ':': '\\c' })[c] ?? c,
  );
}

export interface ActiveMqOptions {
  readonly user?: string;
  readonly password?: string;
  /** How long one start may take before giving up (a JVM on a busy 2-core CI box is slow). */
  readonly startTimeoutMs?: number;
}

export class PrivateActiveMq extends BrokerProcess {
  /** How long the last start took, up to a STOMP CONNECTED (milliseconds). */
  lastStartMs = 0;

  private constructor(
    dir: string,
    readonly stompPort: number,
    readonly openwirePort: number,
    readonly user: string,
    readonly password: string,
    private readonly startTimeoutMs: number,
  ) {
    super(dir);
  }

  static async start(options: ActiveMqOptions = {}): Promise<PrivateActiveMq> {
    if (!existsSync(LAUNCHER)) {
      throw new Error(`${LAUNCHER} is missing: install the Debian package "activemq"`);
    }
    const stompPort = await freePort();
    let openwirePort = await freePort();
    while (openwirePort === stompPort) openwirePort = await freePort();
    const broker = new PrivateActiveMq(
      mkdtempSync(join(tmpdir(), 'epush-activemq-')),
      stompPort,
      openwirePort,
      options.user ?? 'epush',
      options.password ?? 'epush-secret',
      options.startTimeoutMs ?? 30_000,
    );
    try {
      broker.writeConfig();
      await broker.startProcess();
    } catch (error) {
      await broker.stop();
      throw error;
    }
    return broker;
  }

  /** For STOMP clients; the credentials are in the URL, percent-encoded. */
  get stompUrl(): string {
    const auth = `${encodeURIComponent(this.user)}:${encodeURIComponent(this.password)}@`;
    return `stomp://${auth}127.0.0.1:${this.stompPort}`;
  }

  /** The `--backplane` URL (ClusterBroker). */
  get url(): string {
    return this.stompUrl;
  }

  /** For OpenWire (JMS) clients, which take the user and password separately. */
  get openwireUrl(): string {
    return `tcp://127.0.0.1:${this.openwirePort}`;
  }

  private get confDir(): string {
    return join(this.dir, 'conf');
  }

  private get dataDir(): string {
    return join(this.dir, 'data');
  }

  /** The broker's console output (log4j), appended across restarts. */
  get logFile(): string {
    return join(this.dir, 'broker.log');
  }

  private writeConfig(): void {
    mkdirSync(this.confDir, { recursive: true });
    mkdirSync(this.dataDir, { recursive: true });
    const xml = (text: string): string =>
      text.replace(/[<>&"']/g, (c) => `&#${String(c.codePointAt(0))};`);
    // No JMX, no advisory topics, no scheduler, no Jetty console: less to start, fewer threads.
    // KahaDB with small journal files keeps the store small; persistent messages survive a
    // SIGKILL because KahaDB syncs each persistent send to disk before acknowledging it.
    writeFileSync(
      join(this.confDir, 'activemq.xml'),
      `<beans xmlns="http://www.springframework.org/schema/beans"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xsi:schemaLocation="http://www.springframework.org/schema/beans http://www.springframework.org/schema/beans/spring-beans-2.0.xsd
    http://activemq.apache.org/schema/core http://activemq.apache.org/schema/core/activemq-core.xsd">
  <broker xmlns="http://activemq.apache.org/schema/core" brokerName="epush-test"
      useJmx="false" advisorySupport="false" schedulerSupport="false" persistent="true"
      dataDirectory="${xml(this.dataDir)}">
    <persistenceAdapter>
      <kahaDB directory="${xml(join(this.dataDir, 'kahadb'))}" journalMaxFileLength="4mb"/>
    </persistenceAdapter>
    <systemUsage>
      <systemUsage>
        <memoryUsage><memoryUsage limit="16 mb"/></memoryUsage>
        <storeUsage><storeUsage limit="256 mb"/></storeUsage>
        <tempUsage><tempUsage limit="64 mb"/></tempUsage>
      </systemUsage>
    </systemUsage>
    <plugins>
      <simpleAuthenticationPlugin anonymousAccessAllowed="false">
        <users>
          <authenticationUser username="${xml(this.user)}" password="${xml(this.password)}" groups="users"/>
        </users>
      </simpleAuthenticationPlugin>
    </plugins>
    <transportConnectors>
      <transportConnector name="openwire" uri="tcp://127.0.0.1:${this.openwirePort}"/>
      <transportConnector name="stomp" uri="stomp://127.0.0.1:${this.stompPort}?transport.tcpNoDelay=true"/>
    </transportConnectors>
  </broker>
</beans>
`,
    );
    // The Debian build logs through slf4j-log4j12 (log4j 1.2); the conf dir is on its
    // classpath. INFO to the console, which goes to broker.log.
    writeFileSync(
      join(this.confDir, 'log4j.properties'),
      [
        'log4j.rootLogger=INFO, out',
        'log4j.logger.org.springframework=WARN',
        'log4j.logger.org.apache.xbean=WARN',
        'log4j.appender.out=org.apache.log4j.ConsoleAppender',
        'log4j.appender.out.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.out.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n',
        '',
      ].join('\n'),
    );
  }

  protected async startProcess(): Promise<void> {
    const began = Date.now();
    const log = openSync(this.logFile, 'a');
    const child = spawn(
      'java',
      [
        ...JVM_FLAGS,
        `-Dactivemq.home=${ACTIVEMQ_HOME}`,
        `-Dactivemq.base=${this.dir}`,
        `-Dactivemq.conf=${this.confDir}`,
        `-Dactivemq.data=${this.dataDir}`,
        `-Dactivemq.classpath=${this.confDir}`,
        '-jar',
        LAUNCHER,
        'start',
        `xbean:file:${join(this.confDir, 'activemq.xml')}`,
      ],
      { cwd: this.dir, stdio: ['ignore', log, log] },
    );
    closeSync(log);
    this.child = child;
    let exited: string | null = null;
    child.once('exit', (code, signal) => {
      exited = `exited (code ${String(code)}, signal ${String(signal)})`;
    });
    child.once('error', (error) => {
      exited = `could not be run (${error.message}; is Java installed?)`;
    });
    const deadline = began + this.startTimeoutMs;
    while (!(await this.stompAnswers())) {
      if (exited !== null || Date.now() > deadline) {
        const why = exited ?? `did not answer STOMP within ${this.startTimeoutMs} ms`;
        throw new Error(`ActiveMQ in ${this.dir} ${why}; log tail:\n${this.logTail()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    this.lastStartMs = Date.now() - began;
  }

  /** True once a STOMP CONNECT with our credentials gets CONNECTED back. */
  private stompAnswers(): Promise<boolean> {
    return new Promise((resolve) => {
      const socket = connect(this.stompPort, '127.0.0.1');
      let received = '';
      const done = (ok: boolean): void => {
        socket.destroy();
        resolve(ok);
      };
      socket.setTimeout(2_000, () => {
        done(false);
      });
      socket.once('connect', () => {
        socket.write(
          `CONNECT\naccept-version:1.2\nhost:127.0.0.1\nlogin:${stompEscape(this.user)}\n` +
            `passcode:${stompEscape(this.password)}\n\n\0`,
        );
      });
      socket.on('data', (chunk: Buffer) => {
        received += chunk.toString('utf8');
        if (received.includes('\0')) done(received.startsWith('CONNECTED\n'));
      });
      socket.once('error', () => {
        done(false);
      });
      socket.once('close', () => {
        done(false);
      });
    });
  }

  private logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-40).join('\n');
    } catch {
      return '(no log)';
    }
  }
}
