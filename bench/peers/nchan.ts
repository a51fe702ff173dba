/**
 * nchan (nginx + libnginx-mod-nchan) as a bench stack, configured as docs/benchmarks.md
 * (side-by-side) says: one worker, long-poll subscribers on `/sub/<channel>`, publisher on `/pub/<channel>`,
 * private prefix, loopback only. The subscriber timeout is as long as epush's hold.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { freePort } from '../../testbed/free-port.js';
import { openLog, spawnPinned } from '../lib/processes.js';
import { processTree } from '../lib/procfs.js';
import { EPUSH_HOLD_SECONDS } from './epush.js';
import { dpkgVersion, HOST, Publisher, publisherOn, stopPids, waitForPort } from './stack.js';
import type { PeerStack, PublishResult, StackOptions } from './types.js';

const MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';

function nginxConf(dir: string, port: number, maxConnections: number): string {
  return `load_module ${MODULE};
user root root;
worker_processes 1;
worker_rlimit_nofile 20000;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections ${Math.min(19_000, maxConnections + 1000)}; use epoll; multi_accept on; }
http {
  access_log off;
  client_body_temp_path ${dir}/tmp_body;
  proxy_temp_path ${dir}/tmp_proxy;
  fastcgi_temp_path ${dir}/tmp_fcgi;
  uwsgi_temp_path ${dir}/tmp_uwsgi;
  scgi_temp_path ${dir}/tmp_scgi;
  keepalive_timeout 600s;
  keepalive_requests 10000000;
  nchan_shared_memory_size 256M;
  server {
    listen ${HOST}:${port} backlog=4096;
    location ~ ^/sub/(\\w+)$ {
      nchan_subscriber longpoll;
      nchan_channel_id $1;
      nchan_subscriber_first_message newest;
      nchan_subscriber_timeout ${EPUSH_HOLD_SECONDS}s;
    }
    location ~ ^/pub/(\\w+)$ {
      nchan_publisher;
      nchan_channel_id $1;
      nchan_message_buffer_length 16;
      nchan_message_timeout 60s;
    }
  }
}
`;
}

/** Package versions; throws naming a missing package. */
export function nchanVersion(): string {
  return `${dpkgVersion('nginx')}, ${dpkgVersion('libnginx-mod-nchan')}`;
}

export async function startNchan(options: StackOptions): Promise<PeerStack> {
  const version = nchanVersion();
  const dir = resolve(options.dir, 'nchan');
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConf(dir, port, options.maxConnections));
  const log = openLog(join(dir, 'nginx.out'));
  // daemon off: the master stays our child, so its pid is known without the pid file.
  const master = spawnPinned(
    options.cpu,
    ['nginx', '-p', `${dir}/`, '-c', conf, '-g', 'daemon off;'],
    {
      log,
    },
  );
  try {
    await waitForPort(
      port,
      10_000,
      `nginx (see ${dir}/nginx.out)`,
      () => master.child.exitCode === null,
    );
  } catch (error) {
    await stopPids(processTree(master.pid), 2000);
    throw error;
  }
  const api = new Publisher(port);
  const channel = options.channel;
  const publishOn = async (client: Publisher, payload: string): Promise<PublishResult> => {
    const response = await client.request('POST', `/pub/${channel}`, payload);
    // 201: delivered to subscribers; 202: stored, nobody listening.
    return {
      status: response.status,
      ok: response.status === 201 || response.status === 202,
      body: response.body,
    };
  };
  return {
    name: 'nchan',
    version,
    port,
    config:
      'nginx 1 worker, `nchan_subscriber longpoll`, `nchan_subscriber_first_message newest`, ' +
      `\`nchan_subscriber_timeout ${EPUSH_HOLD_SECONDS}s\`, \`nchan_message_buffer_length 16\`, ` +
      '`nchan_shared_memory_size 256M`, keepalive 600 s',
    pids: () => processTree(master.pid),
    prepareListeners: (n) => Promise.resolve(Array.from({ length: n }, () => channel)),
    publish: (payload) => publishOn(api, payload),
    openPublisher: () => publisherOn(port, publishOn),
    async stop() {
      api.close();
      // TERM is nginx's fast shutdown: it closes the held connections itself.
      const tree = processTree(master.pid);
      await stopPids([master.pid], 10_000);
      await stopPids(tree, 2000);
      await new Promise<void>((done) => {
        log.end(done);
      });
    },
  };
}
