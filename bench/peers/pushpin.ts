/**
 * Pushpin as a bench stack (tuned; docs/benchmarks.md, side-by-side): the pushpin runner (condure,
 * pushpin-proxy, pushpin-handler), zurl, and servers/grip-backend.mjs answering every
 * `GET /stream?ch=X` with `Grip-Hold: response`. Everything private: ports picked free on
 * 127.0.0.1, ipc sockets and the internal.conf copy under the stack's own folder (so zurl does not
 * need /var/run/zurl and cannot collide with another zurl; gotcha 5: Debian's runner does not
 * start zurl). Tuned: message_rate and message_hwm 100000 (gotcha 6), zurl max_open_requests
 * 20000 and hwm 100000.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../../testbed/free-port.js';
import { openLog, spawnPinned, type Spawned } from '../lib/processes.js';
import { isAlive, processTree } from '../lib/procfs.js';
import { EPUSH_HOLD_SECONDS } from './epush.js';
import { startNodeServer } from './node-server.js';
import { dpkgVersion, HOST, Publisher, publisherOn, stopPids, waitForPort } from './stack.js';
import type { LoadHints, PeerStack, PublishResult, StackOptions } from './types.js';

/** One core cannot take a 10k burst through proxy → handler → zurl → backend (gotcha 7). */
export const PUSHPIN_HINTS: LoadHints = {
  connectRatePerSec: 1000,
  retryBaseMs: 1000,
  retryMaxMs: 5000,
  tolerateUnarmed: true,
};

function pushpinConf(dir: string, ports: Record<string, number>, maxConnections: number): string {
  return `[global]
include=${dir}/internal.conf
rundir=${dir}/run
ipc_prefix=pushpin-
port_offset=0
stats_connection_ttl=120

[runner]
services=condure,pushpin-proxy,pushpin-handler
http_port=${HOST}:${ports.http}
logdir=${dir}/log
log_level=2
client_buffer_size=8192
client_maxconn=${Math.max(100_000, maxConnections + 1000)}
condure_bin=condure
mongrel2_bin=mongrel2
m2sh_bin=m2sh
zurl_bin=zurl

[proxy]
routesfile=routes
debug=false
auto_cross_origin=false
accept_x_forwarded_protocol=false
set_x_forwarded_protocol=proto-only
log_from=false
log_user_agent=false
sig_iss=pushpin
sig_key=changeme
updates_check=off

[handler]
push_in_spec=tcp://${HOST}:${ports.pushIn}
push_in_sub_specs=tcp://${HOST}:${ports.pushInSub}
push_in_sub_connect=false
push_in_http_addr=${HOST}
push_in_http_port=${ports.publish}
push_in_http_max_headers_size=10000
push_in_http_max_body_size=1000000
stats_spec=ipc://{rundir}/{ipc_prefix}stats
command_spec=tcp://${HOST}:${ports.command}
message_rate=100000
message_hwm=100000
message_wait=5000
id_cache_ttl=60
connection_subscription_max=20
subscription_linger=60
stats_subscription_ttl=60
stats_report_interval=10
stats_format=tnetstring
`;
}

function zurlConf(zurlDir: string): string {
  return `[General]
instance_id=
in_spec=ipc://${zurlDir}/zurl-in
in_stream_spec=ipc://${zurlDir}/zurl-in-stream
out_spec=ipc://${zurlDir}/zurl-out
in_req_spec=ipc://${zurlDir}/zurl-req
ipc_file_mode=660
defpolicy=allow
allow=
deny=
max_open_requests=20000
buffer_size=200000
timeout=600
in_hwm=100000
out_hwm=100000
`;
}

/** Package versions; throws naming a missing package. */
export function pushpinVersion(): string {
  return ['pushpin', 'condure', 'zurl'].map(dpkgVersion).join(', ');
}

export async function startPushpin(options: StackOptions): Promise<PeerStack> {
  const version = pushpinVersion();
  const dir = resolve(options.dir, 'pp');
  const zurlDir = join(dir, 'z');
  for (const sub of ['run', 'log', 'z']) mkdirSync(join(dir, sub), { recursive: true });
  const ports = {
    http: await freePort(),
    publish: await freePort(),
    pushIn: await freePort(),
    pushInSub: await freePort(),
    command: await freePort(),
  };
  // The Debian internal.conf points the proxy at /var/run/zurl: a private copy points it at ours.
  const internal = readFileSync('/usr/lib/pushpin/internal.conf', 'utf8').replaceAll(
    'ipc:///var/run/zurl/',
    `ipc://${zurlDir}/`,
  );
  writeFileSync(join(dir, 'internal.conf'), internal);
  writeFileSync(join(dir, 'zurl.conf'), zurlConf(zurlDir));
  writeFileSync(join(dir, 'pushpin.conf'), pushpinConf(dir, ports, options.maxConnections));

  const started: Spawned[] = [];
  const log = openLog(join(dir, 'stack.out'));
  let backend: Awaited<ReturnType<typeof startNodeServer>> | null = null;
  const stopAll = async (): Promise<void> => {
    const runner = started[1];
    const trees = started.map((one) => processTree(one.pid));
    // The runner stops its children; then whatever survived, then zurl.
    if (runner) await stopPids([runner.pid], 10_000);
    await stopPids(trees.flat(), 3000);
    if (backend) await backend.stop();
  };
  try {
    started.push(spawnPinned(options.cpu, ['zurl', `--config=${join(dir, 'zurl.conf')}`], { log }));
    backend = await startNodeServer(
      'grip-backend.mjs',
      { HOLD_SECONDS: String(EPUSH_HOLD_SECONDS) },
      options.cpu,
      join(dir, 'grip-backend.log'),
    );
    writeFileSync(join(dir, 'routes'), `* ${HOST}:${backend.port}\n`);
    started.push(
      spawnPinned(options.cpu, ['pushpin', `--config=${join(dir, 'pushpin.conf')}`], {
        cwd: dir,
        log,
      }),
    );
    await waitForPort(
      ports.http,
      20_000,
      `pushpin (condure; see ${dir}/log)`,
      () => started[1]?.child.exitCode === null,
    );
    await waitForPort(ports.publish, 20_000, 'pushpin-handler (publish)');
  } catch (error) {
    await stopAll();
    throw error;
  }
  const grip = backend;
  const api = new Publisher(ports.publish);
  const channel = options.channel;
  const publishOn = async (client: Publisher, payload: string): Promise<PublishResult> => {
    const response = await client.request('POST', '/publish/', {
      items: [{ channel, formats: { 'http-response': { body: payload } } }],
    });
    return { status: response.status, ok: response.status === 200, body: response.body };
  };
  return {
    name: 'pushpin',
    version,
    port: ports.http,
    config:
      `pushpin runner (condure + pushpin-proxy + pushpin-handler), \`message_rate=100000\`, \`message_hwm=100000\`, ` +
      `\`client_maxconn=100000\`; zurl with \`max_open_requests=20000\`, hwm 100000; a Node GRIP origin answering ` +
      `\`Grip-Hold: response\`, \`Grip-Timeout: ${EPUSH_HOLD_SECONDS}\`; publish \`POST /publish/\` (http-response format)`,
    pids: () =>
      [...started.map((one) => processTree(one.pid)).flat(), grip.spawned.pid].filter(isAlive),
    prepareListeners: (n) => Promise.resolve(Array.from({ length: n }, () => channel)),
    publish: (payload) => publishOn(api, payload),
    openPublisher: () => publisherOn(ports.publish, publishOn),
    async stop() {
      api.close();
      await stopAll();
      await new Promise<void>((done) => {
        log.end(done);
      });
    },
  };
}
