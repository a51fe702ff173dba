/** The longpoll-fanout generator's command line (bench/longpoll-fanout/generator.ts). */
import { Args } from '../lib/args.js';
import { isTransport, TRANSPORTS, type GeneratorOptions } from './types.js';

export function parseOptions(argv: readonly string[]): GeneratorOptions {
  const args = Args.parse(argv, {
    host: 'string',
    port: 'number',
    'server-pid': 'number',
    n: 'number',
    m: 'number',
    'src-ips': 'number',
    concurrency: 'number',
    'max-seconds': 'number',
    'settle-ms': 'number',
    'repoll-delay-ms': 'number',
    warmup: 'number',
    heap: 'boolean',
    'stats-file': 'string',
    'control-file': 'string',
    'profile-file': 'string',
    group: 'string',
    'delivery-timeout-ms': 'number',
    'quiet-timeout-ms': 'number',
    'quiet-max-busy-ms': 'number',
    out: 'string',
    transport: 'string',
  });
  const transport = args.string('transport', 'long-poll');
  if (!isTransport(transport)) {
    throw new Error(`--transport must be one of ${TRANSPORTS.join(', ')} (got "${transport}")`);
  }
  const n = args.integer('n', 10_000, 1, 19_500);
  const statsFile = args.optionalString('stats-file') ?? null;
  const controlFile = args.optionalString('control-file') ?? null;
  return {
    host: args.string('host', '127.0.0.1'),
    port: args.integer('port', 0, 1, 65535),
    serverPid: args.integer('server-pid', 0, 1),
    n,
    m: args.integer('m', 10, 1, 10_000),
    srcIps: args.integer('src-ips', 4, 1, 250),
    concurrency: args.integer('concurrency', 256, 1, 10_000),
    maxSeconds: args.number('max-seconds', 300, 1, 86_400),
    settleMs: args.integer('settle-ms', 300 + Math.round(n / 10), 0, 600_000),
    repollDelayMs: args.integer('repoll-delay-ms', 0, 0, 600_000),
    warmup: args.integer('warmup', Math.min(200, n), 0, 1000),
    heap: args.boolean('heap', statsFile !== null) && statsFile !== null && controlFile !== null,
    statsFile,
    controlFile,
    profileFile: args.optionalString('profile-file') ?? null,
    group: args.string('group', 'bench'),
    deliveryTimeoutMs: args.integer('delivery-timeout-ms', 30_000 + n, 100, 3_600_000),
    quietTimeoutMs: args.integer('quiet-timeout-ms', 20_000, 500, 3_600_000),
    quietMaxBusyMs: args.number('quiet-max-busy-ms', 5, 0, 250),
    out: args.string('out', '.bench-out/generator-result.json'),
    transport,
  };
}
