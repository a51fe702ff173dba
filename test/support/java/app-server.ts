/**
 * A private Java application server for one suite, from Debian's packages, never through their
 * system services: Tomcat 10 ("tomcat10", jakarta.servlet) with its own CATALINA_BASE, or Jetty 9
 * ("jetty9", javax.servlet) with its own jetty.base, in a temp dir, on a free loopback port, with
 * one WAR deployed as the root application. Fails loudly, naming the package, when it is missing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../testbed/free-port.js';
import { killOnExit } from '../../../testbed/kill-on-exit.js';

export type AppServerKind = 'tomcat10' | 'jetty9';

const TOMCAT_HOME = '/usr/share/tomcat10';
const JETTY_HOME = '/usr/share/jetty9';

/** A short-lived server JVM: client JIT only, serial GC, a small heap, no perf-data file. */
const JVM_FLAGS = [
  '-Xms32m',
  '-Xmx256m',
  '-XX:TieredStopAtLevel=1',
  '-XX:+UseSerialGC',
  '-XX:-UsePerfData',
  '-Djava.awt.headless=true',
];

interface Layout {
  readonly args: string[];
  /** The server's console log. */
  readonly log: string;
}

function tomcatBase(dir: string, port: number, war: string): Layout {
  const bootstrap = join(TOMCAT_HOME, 'bin', 'bootstrap.jar');
  if (!existsSync(bootstrap)) {
    throw new Error(`${bootstrap} is missing: install the Debian package "tomcat10"`);
  }
  for (const sub of ['conf', 'logs', 'webapps', 'work', 'temp']) mkdirSync(join(dir, sub));
  copyFileSync(join(TOMCAT_HOME, 'etc', 'web.xml'), join(dir, 'conf', 'web.xml'));
  // No shutdown port (port="-1"): the test stops it with a signal. No auto-deploy scanning.
  writeFileSync(
    join(dir, 'conf', 'server.xml'),
    `<Server port="-1" shutdown="SHUTDOWN">
  <Service name="Catalina">
    <Connector port="${port}" address="127.0.0.1" protocol="HTTP/1.1" connectionTimeout="20000"/>
    <Engine name="Catalina" defaultHost="localhost">
      <Host name="localhost" appBase="webapps" unpackWARs="true" autoDeploy="false"/>
    </Engine>
  </Service>
</Server>
`,
  );
  copyFileSync(war, join(dir, 'webapps', 'ROOT.war'));
  return {
    args: [
      ...JVM_FLAGS,
      `-Dcatalina.home=${TOMCAT_HOME}`,
      `-Dcatalina.base=${dir}`,
      `-Djava.io.tmpdir=${join(dir, 'temp')}`,
      '-cp',
      [bootstrap, join(TOMCAT_HOME, 'bin', 'tomcat-juli.jar')].join(':'),
      'org.apache.catalina.startup.Bootstrap',
      'start',
    ],
    log: join(dir, 'logs', 'console.log'),
  };
}

function jettyBase(dir: string, port: number, war: string): Layout {
  const startJar = join(JETTY_HOME, 'start.jar');
  if (!existsSync(startJar)) {
    throw new Error(`${startJar} is missing: install the Debian package "jetty9"`);
  }
  mkdirSync(join(dir, 'webapps'));
  writeFileSync(
    join(dir, 'start.ini'),
    [
      '--module=server,http,deploy',
      'jetty.http.host=127.0.0.1',
      `jetty.http.port=${port}`,
      'jetty.deploy.scanInterval=0',
      '',
    ].join('\n'),
  );
  copyFileSync(war, join(dir, 'webapps', 'ROOT.war'));
  return {
    args: [
      ...JVM_FLAGS,
      `-Djava.io.tmpdir=${dir}`,
      '-jar',
      startJar,
      `jetty.home=${JETTY_HOME}`,
      `jetty.base=${dir}`,
    ],
    log: join(dir, 'console.log'),
  };
}

export class JavaAppServer {
  private constructor(
    readonly kind: AppServerKind,
    readonly port: number,
    private readonly dir: string,
    private readonly child: ChildProcess,
    private readonly logFile: string,
  ) {}

  /**
   * Starts the server with `war` as its root application and `env` in its environment, and
   * resolves once `readyPath` answers (any status below 500 but 404: the application is deployed).
   */
  static async start(
    kind: AppServerKind,
    war: string,
    env: Readonly<Record<string, string>>,
    readyPath = '/',
    timeoutMs = 60_000,
  ): Promise<JavaAppServer> {
    const dir = mkdtempSync(join(tmpdir(), `epush-${kind}-`));
    const port = await freePort();
    const layout = kind === 'tomcat10' ? tomcatBase(dir, port, war) : jettyBase(dir, port, war);
    const log = openSync(layout.log, 'a');
    const child = spawn('java', layout.args, {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
      stdio: ['ignore', log, log],
    });
    closeSync(log);
    killOnExit(child);
    const server = new JavaAppServer(kind, port, dir, child, layout.log);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await fetch(`${server.url}${readyPath}`, { method: 'HEAD' })
        .then((answer) => answer.status)
        .catch(() => 0);
      if (status !== 0 && status !== 404 && status !== 503) break;
      if (child.exitCode !== null || Date.now() > deadline) {
        const tail = server.logTail();
        await server.stop();
        throw new Error(`${kind} did not deploy the application (last status ${status}):\n${tail}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  logTail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-60).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM (both servers shut down cleanly on it), SIGKILL after 10 s; removes the base. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
