import { EpushError } from '../../core/errors.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type { BackplaneOptions } from '../backplane.js';
import type { BackplaneDriver, DriverLink } from '../driver.js';
import { MemoryDriver } from '../memory/memory-driver.js';
import { MemoryStore } from '../memory/memory-store.js';
import {
  RELAYED_METHODS,
  type EncodedHistories,
  type RelayChannel,
  type RelayedMethod,
} from './ipc-driver.js';

/**
 * The primary's side of `--workers N` on the memory backplane: one MemoryStore, and for each
 * worker a MemoryDriver connected to it whose calls arrive over IPC and whose tail entries go
 * back over IPC. Workers that are gone are detached.
 */
export class DriverRelay {
  private readonly store: MemoryStore;
  private readonly drivers = new Map<RelayChannel, MemoryDriver>();

  constructor(options: BackplaneOptions) {
    this.store = new MemoryStore(options);
  }

  attach(worker: RelayChannel): void {
    const driver = new MemoryDriver(this.store);
    this.drivers.set(worker, driver);
    const link: DriverLink = {
      entry: (epoch, entry) => {
        worker.send({ epush: 'entry', epoch, entry });
      },
      probe: (token) => {
        worker.send({ epush: 'probe', token });
      },
      link: (up) => {
        worker.send({ epush: 'link', up });
      },
    };
    void driver.connect(link);
    worker.onMessage((message) => {
      if (message.epush === 'call')
        void this.serve(worker, driver, message.id, message.method, message.args);
    });
  }

  detach(worker: RelayChannel): void {
    void this.drivers.get(worker)?.close();
    this.drivers.delete(worker);
  }

  private async serve(
    worker: RelayChannel,
    driver: BackplaneDriver,
    id: number,
    method: RelayedMethod,
    args: unknown[],
  ): Promise<void> {
    if (!RELAYED_METHODS.includes(method)) {
      worker.send({ epush: 'failure', id, code: null, message: `unknown method ${method}` });
      return;
    }
    try {
      const target = driver as unknown as Record<
        RelayedMethod,
        (...a: unknown[]) => Promise<unknown>
      >;
      // Histories are class instances: they cross in their stored text form.
      const value =
        method === 'histories'
          ? encodeHistories(await driver.histories(args[0] as readonly PushId[]))
          : await target[method](...args);
      worker.send({ epush: 'result', id, value });
    } catch (error) {
      worker.send({
        epush: 'failure',
        id,
        code: error instanceof EpushError ? error.code : null,
        message: error instanceof Error ? error.message : String(error),
      });
    }
  }
}

function encodeHistories(histories: Map<PushId, MembershipHistory>): EncodedHistories {
  return [...histories].map(([pushId, history]) => [pushId, [...history.encode()]]);
}
