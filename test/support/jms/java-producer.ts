/**
 * Runs EpushJmsProducer.java, a plain JMS client speaking OpenWire: what an existing Java
 * application would use to notify epush through the broker. It is compiled once per test
 * process with javac against the jars of the Debian package "activemq" (pulled in through
 * libactivemq-java), into a temp directory removed at exit.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SOURCE = fileURLToPath(new URL('./EpushJmsProducer.java', import.meta.url));
const JARS_DIR = '/usr/share/java';

/** javac needs only the JMS API and the ActiveMQ connection factory. */
export const COMPILE_JARS = ['activemq-client.jar', 'geronimo-jms_1.1_spec.jar'];

/**
 * At run time the client also needs the J2EE management API (its statistics classes
 * implement it), hawtbuf (OpenWire marshalling) and slf4j; slf4j-nop keeps slf4j from printing
 * its "no binding" warning on stderr.
 */
export const RUNTIME_JARS = [
  ...COMPILE_JARS,
  'geronimo-j2ee-management-1.1-spec.jar',
  'hawtbuf.jar',
  'slf4j-api.jar',
  'slf4j-nop.jar',
];

/** Start-up flags for a JVM that lives half a second: no optimising JIT, no perf-data file. */
const JVM_FLAGS = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC', '-XX:-UsePerfData'];

export interface JmsSend {
  /** OpenWire URL, e.g. `tcp://127.0.0.1:61616`. */
  readonly brokerUrl: string;
  readonly user: string;
  readonly password: string;
  /** `queue://NAME` or `topic://NAME` (JMS names: a STOMP client sees `/queue/NAME`). */
  readonly destination: string;
  readonly body: string;
  /** String properties of the JMS message. */
  readonly properties?: Readonly<Record<string, string>>;
  /**
   * Sends this many messages over one connection, in order (default 1), each with `{i}` in
   * `body` replaced by its number, 1 to `count`.
   */
  readonly count?: number;
  /** Sends a BytesMessage holding these bytes instead of a TextMessage; `body` is then unused. */
  readonly bytesBody?: Uint8Array;
}

export interface JavaProducerResult {
  /** 0 sent, 2 JMS failure (refused login, no broker...), 64 bad arguments. */
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

let compiled: Promise<string> | null = null;

/** Compiles the producer (once per process) and resolves with the class directory. */
export function compileJavaProducer(): Promise<string> {
  compiled ??= (async () => {
    for (const jar of RUNTIME_JARS) {
      if (!existsSync(join(JARS_DIR, jar))) {
        throw new Error(`${join(JARS_DIR, jar)} is missing: install the Debian package "activemq"`);
      }
    }
    const classes = mkdtempSync(join(tmpdir(), 'epush-jms-'));
    process.once('exit', () => {
      rmSync(classes, { recursive: true, force: true });
    });
    const classpath = COMPILE_JARS.map((jar) => join(JARS_DIR, jar)).join(':');
    try {
      await run('javac', ['-d', classes, '-cp', classpath, SOURCE]);
    } catch (error) {
      const detail = (error as { stderr?: string }).stderr ?? String(error);
      throw new Error(
        `javac EpushJmsProducer.java failed (install the Debian package "openjdk-17-jdk-headless"):\n${detail}`,
      );
    }
    return classes;
  })();
  return compiled;
}

/** Runs the producer once; resolves whatever its exit status (see `sendWithJavaProducer`). */
export async function runJavaProducer(send: JmsSend): Promise<JavaProducerResult> {
  const classes = await compileJavaProducer();
  const classpath = [classes, ...RUNTIME_JARS.map((jar) => join(JARS_DIR, jar))].join(':');
  const properties = Object.entries(send.properties ?? {}).map(([key, value]) => `${key}=${value}`);
  const args = [
    ...JVM_FLAGS,
    ...(send.count === undefined ? [] : [`-Depush.count=${send.count}`]),
    ...(send.bytesBody === undefined ? [] : ['-Depush.bytes=true']),
    '-cp',
    classpath,
    'EpushJmsProducer',
    send.brokerUrl,
    send.user,
    send.password,
    send.destination,
    send.bytesBody === undefined ? send.body : Buffer.from(send.bytesBody).toString('base64'),
    ...properties,
  ];
  // The JVM decodes its arguments with the locale's charset: force UTF-8 so non-ASCII bodies
  // and property values arrive intact whatever LANG the CI job has.
  const env = { ...process.env, LC_ALL: 'C.UTF-8' };
  try {
    const { stdout, stderr } = await run('java', args, { env, timeout: 30_000 });
    return { status: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: unknown; stdout?: string; stderr?: string; message: string };
    return {
      status: typeof failed.code === 'number' ? failed.code : -1,
      stdout: failed.stdout ?? '',
      stderr: failed.stderr ?? failed.message,
    };
  }
}

/**
 * Sends one JMS message (`count` of them if set); rejects with the producer's own message when
 * it fails. `messageId` is the first message's JMS message ID, `messageIds` all of them in order.
 */
export async function sendWithJavaProducer(
  send: JmsSend,
): Promise<{ messageId: string; messageIds: string[] }> {
  const result = await runJavaProducer(send);
  if (result.status !== 0) {
    throw new Error(`the Java JMS producer exited ${result.status}: ${result.stderr.trim()}`);
  }
  const messageIds = result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return { messageId: messageIds[0] ?? '', messageIds };
}
