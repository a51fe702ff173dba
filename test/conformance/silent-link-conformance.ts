/**
 * The silently dead link, per network driver (Redis, NATS JetStream, STOMP): node `b` reaches the
 * broker through a TcpFaultProxy, which at one point keeps every open connection dead for good
 * (no FIN, no RST, no byte) while new connections pass. Under the one cluster protocol, the
 * driver must notice, drop the link and reconnect: `b` is unhealthy within 10 s (its sink
 * reports the link down, or a probe fails, as the node's delivery canary sees it), healthy again
 * within 15 s, and it receives what `a` appended meanwhile; what it appends reaches `a` again.
 * `b` starts first, so with STOMP it is the sequencer: the broker must let go of the dead link's
 * exclusive queue before anyone can sequence again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BackplaneOptions, ClusterEventSink } from '../../src/backplane/backplane.js';
import { ReplicatedBackplane } from '../../src/backplane/protocol/replicated-backplane.js';
import type { ClusterEvent, NotificationId } from '../../src/core/events.js';
import { mintPushIds } from '../../src/core/push-id.js';
import { sleep, until } from '../support/epush-process.js';
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js';
import type { DriverPair } from './backplane-conformance.js';

export interface SilentLinkTarget {
  /** Where the broker listens (the proxy forwards there). */
  readonly brokerPort: number;
  /** Two drivers of one cluster: `a` reaches the broker directly, `b` at 127.0.0.1:`viaPort`. */
  pair(options: BackplaneOptions, viaPort: number): DriverPair;
}

/** `url` (a broker at 127.0.0.1:`brokerPort`) pointed at 127.0.0.1:`viaPort` instead. */
export function routedVia(url: string, brokerPort: number, viaPort: number): string {
  const at = `127.0.0.1:${String(brokerPort)}`;
  assert.ok(url.includes(at), `${url} does not name ${at}`);
  return url.replace(at, `127.0.0.1:${String(viaPort)}`);
}

const OPTIONS: BackplaneOptions = {
  retentionMs: 60_000,
  pushIdTtlMs: 60_000,
  maxLogBytes: 64 << 20,
  nodeTimeoutMs: 15_000,
};
const DETECT_WITHIN_MS = 10_000;
const HEAL_WITHIN_MS = 15_000;
/** As the node's delivery canary: a probe a second, each allowed this long. */
const PROBE_EVERY_MS = 1000;
const PROBE_TIMEOUT_MS = 3000;
const CHECK_EVERY_MS = PROBE_EVERY_MS / 4;

class Sink implements ClusterEventSink {
  readonly ids = new Set<string>();
  up = false;
  onEvent(event: ClusterEvent): void {
    if (event.type === 'notification') this.ids.add(event.id);
  }
  onGap(): void {
    // The protocol re-reads; this suite checks what arrives.
  }
  onAvailability(up: boolean): void {
    this.up = up;
  }
}

async function probeOnce(backplane: ReplicatedBackplane): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      backplane.probe().then(
        () => true,
        () => false,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function runSilentLinkConformance(name: string, target: () => SilentLinkTarget): void {
  describe(`backplane conformance: ${name}: a link that dies without closing`, () => {
    let proxy: TcpFaultProxy;
    let a: ReplicatedBackplane;
    let b: ReplicatedBackplane;
    const sinkA = new Sink();
    const sinkB = new Sink();

    before(async () => {
      const chosen = target();
      proxy = await TcpFaultProxy.start('127.0.0.1', chosen.brokerPort);
      const drivers = chosen.pair(OPTIONS, proxy.port);
      a = new ReplicatedBackplane(drivers.a, OPTIONS);
      b = new ReplicatedBackplane(drivers.b, OPTIONS);
      await b.start(sinkB);
      await a.start(sinkA);
    });

    after(async () => {
      await a.stop();
      await b.stop();
      await proxy.stop();
    });

    test('is replaced: unhealthy within 10 s, healthy within 15 s, nothing appended meanwhile lost', async () => {
      const [pushId] = mintPushIds(1);
      assert.ok(pushId);
      const healthy = async (): Promise<boolean> => sinkB.up && (await probeOnce(b));
      await until('b is healthy at first', healthy, HEAL_WITHIN_MS, CHECK_EVERY_MS);

      const killed = proxy.killExistingSilently();
      assert.ok(killed >= 1, 'b had a connection through the proxy');
      const redMs = await until(
        'b turns unhealthy',
        async () => !(await healthy()),
        DETECT_WITHIN_MS,
      );

      // `a` keeps appending while `b` has no link; every append it confirmed must reach `b`.
      const appended: string[] = [];
      let appending = true;
      const appender = (async () => {
        for (let i = 0; appending; i++) {
          const id = `silent-${name}-${i}` as NotificationId;
          const event = await a
            .publish({
              type: 'notification',
              id,
              group: null,
              pushId,
              payloadJson: String(i),
              publishedAt: Date.now(),
            })
            .catch(() => null);
          if (event) appended.push(id);
          await sleep(100);
        }
      })();
      const greenMs = await until('b is healthy again', healthy, HEAL_WITHIN_MS, CHECK_EVERY_MS);
      appending = false;
      await appender;
      assert.ok(appended.length > 0, 'a appended during the outage');

      await until(
        'b received every entry a appended',
        () => Promise.resolve(appended.every((id) => sinkB.ids.has(id))),
        5000,
      );
      const back = await b.publish({
        type: 'notification',
        id: `silent-${name}-back` as NotificationId,
        group: null,
        pushId,
        payloadJson: 'null',
        publishedAt: Date.now(),
      });
      await until('a receives what b appends', () => Promise.resolve(sinkA.ids.has(back.id)), 5000);
      console.log(
        `silent-link ${JSON.stringify({ backplane: name, redAfterMs: redMs, greenAfterRedMs: greenMs, appendedMeanwhile: appended.length })}`,
      );
    });
  });
}
