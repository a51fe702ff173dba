/**
 * `write-floor`: what one `socket.write` costs a Node process on this machine, with nothing
 * else around it: no HTTP, no JSON, no dispatcher. A server holds N loopback sockets and writes one
 * message of B bytes to each, M rounds; its CPU per write is the floor under any Node push server
 * that keeps one TCP connection per listener (every delivery is at least one write). The
 * generator runs in its own process on the other CPU and only counts bytes.
 *
 *   npm run bench -- write-floor [--n 10000] [--m 10] [--bytes 200]
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { ArgError } from '../lib/args.js';
import { machineInfo } from '../lib/machine.js';
import { onStdoutLine, spawnPinned, stopWithin } from '../lib/processes.js';

const SELF = fileURLToPath(import.meta.url);
const MAX_SECONDS = 120;

interface Options {
  readonly n: number;
  readonly m: number;
  readonly bytes: number;
}

function parse(argv: readonly string[]): Options {
  const options = { n: 10_000, m: 10, bytes: 200 };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = Number(argv[i + 1]);
    if (!Number.isSafeInteger(value) || value < 1)
      throw new ArgError(`${name} needs a positive integer`);
    if (name === '--n' && value <= 19_000) options.n = value;
    else if (name === '--m' && value <= 1000) options.m = value;
    else if (name === '--bytes' && value <= 65_536) options.bytes = value;
    else
      throw new ArgError(`write-floor: unknown flag or value out of range: ${name} ${argv[i + 1]}`);
  }
  return options;
}

/** Runs server and generator pinned to CPUs 0 and 1 and prints the figures. */
export async function runWriteFloor(argv: readonly string[]): Promise<number> {
  const options = parse(argv);
  const node = [process.execPath, '--import', 'tsx', SELF];
  const server = spawnPinned(
    0,
    [...node, 'serve', String(options.n), String(options.m), String(options.bytes)],
    {},
  );
  const deadline = setTimeout(() => {
    process.stderr.write(`write-floor: no result within ${MAX_SECONDS} s\n`);
    server.child.kill('SIGKILL');
  }, MAX_SECONDS * 1000);
  let generator: ReturnType<typeof spawnPinned> | null = null;
  const results: string[] = [];
  server.child.stderr?.pipe(process.stderr);
  await new Promise<void>((resolve) => {
    onStdoutLine(server, (line) => {
      if (line.startsWith('port ')) {
        generator = spawnPinned(
          1,
          [
            ...node,
            'generate',
            line.slice(5),
            String(options.n),
            String(options.m),
            String(options.bytes),
          ],
          {},
        );
        generator.child.stderr?.pipe(process.stderr);
      } else if (line.startsWith('{')) {
        results.push(line);
      } else if (line === 'done') {
        resolve();
      }
    });
    void server.exited.then(() => {
      resolve();
    });
  });
  clearTimeout(deadline);
  await stopWithin(server, 2000);
  if (generator) await stopWithin(generator, 2000);
  const machine = machineInfo();
  process.stdout.write(
    `write-floor on ${machine.cpuModel} (${machine.nproc} CPUs), node ${process.version}, N=${options.n}, M=${options.m}, ${options.bytes} B\n`,
  );
  process.stdout.write(
    '| write | server CPU µs/write | user | system |\n| --- | --- | --- | --- |\n',
  );
  for (const line of results) {
    const r = JSON.parse(line) as {
      mode: string;
      perWriteUs: number;
      userUs: number;
      systemUs: number;
    };
    process.stdout.write(
      `| ${r.mode} | ${r.perWriteUs.toFixed(1)} | ${r.userUs.toFixed(1)} | ${r.systemUs.toFixed(1)} |\n`,
    );
  }
  return results.length === 0 ? 1 : 0;
}

async function serve(n: number, m: number, bytes: number): Promise<void> {
  const sockets: Socket[] = [];
  let control: Socket | null = null;
  let ack: (() => void) | null = null;
  const all = new Promise<void>((resolve) => {
    const server = createServer({ noDelay: true }, (socket) => {
      socket.on('error', () => {});
      // The generator connects its control socket first and opens the others once it is up.
      if (control === null) {
        control = socket;
        socket.on('data', () => ack?.());
        return;
      }
      sockets.push(socket);
      if (sockets.length === n) resolve();
    });
    server.listen(0, '127.0.0.1', () => {
      process.stdout.write(`port ${(server.address() as { port: number }).port}\n`);
    });
  });
  await all;
  await new Promise((r) => setTimeout(r, 500));
  const text = `data: ${'x'.repeat(bytes - 8)}\n\n`;
  const modes: Array<[string, (s: Socket) => void]> = [
    ['socket.write(string)', (s) => s.write(text)],
    ['socket.write(Buffer)', (s) => s.write(Buffer.from(text))],
  ];
  for (const [mode, write] of modes) {
    let cpu = { user: 0, system: 0 };
    for (let round = 0; round < m; round += 1) {
      const acked = new Promise<void>((resolve) => (ack = resolve));
      const before = process.cpuUsage();
      for (const socket of sockets) write(socket);
      await acked;
      const spent = process.cpuUsage(before);
      cpu = { user: cpu.user + spent.user, system: cpu.system + spent.system };
      await new Promise((r) => setTimeout(r, 100));
    }
    const writes = n * m;
    process.stdout.write(
      `${JSON.stringify({ mode, perWriteUs: (cpu.user + cpu.system) / writes, userUs: cpu.user / writes, systemUs: cpu.system / writes })}\n`,
    );
  }
  process.stdout.write('done\n');
  for (const socket of sockets) socket.destroy();
  process.exit(0);
}

function generate(port: number, n: number, bytes: number): void {
  let received = 0;
  let rounds = 0;
  const perRound = n * bytes;
  const fail = (error: Error): void => {
    process.stderr.write(`write-floor generator: ${error.message}\n`);
    process.exit(1);
  };
  const control = createConnection({ port, host: '127.0.0.1' });
  control.on('error', fail);
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    while (received >= perRound * (rounds + 1)) {
      rounds += 1;
      control.write('a');
    }
  };
  let opened = 0;
  let connected = 0;
  const open = (): void => {
    while (opened < n && opened - connected < 256) {
      opened += 1;
      const socket = createConnection({ port, host: '127.0.0.1' });
      socket.on('connect', () => {
        connected += 1;
        open();
      });
      socket.on('data', onData);
      socket.on('error', fail);
    }
  };
  control.on('connect', open);
  setTimeout(() => process.exit(0), MAX_SECONDS * 1000).unref();
}

const [role, ...args] = process.argv.slice(2);
if (role === 'serve') void serve(Number(args[0]), Number(args[1]), Number(args[2]));
else if (role === 'generate') generate(Number(args[0]), Number(args[1]), Number(args[3]));
