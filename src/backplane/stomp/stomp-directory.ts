import type { NodeInfo } from '../backplane.js';
import type { Beat } from '../driver.js';
import { sendWithReceipt, type Client } from './stomp-connection.js';
import type { NodeBeat } from './stomp-protocol.js';
import { withTimeout } from './stomp-sequencer.js';

const BEAT_TIMEOUT_MS = 5000;

/**
 * The node directory of a STOMP cluster: heartbeats go on the events topic (one destination, so
 * a heartbeat sent before a sync is seen before its mark), every node keeps the beats it heard,
 * aged on its own clock. Each node's directory is its own: forgetting another node is local
 * (a node whose view is stale, after a reconnect or a stall, must not erase a live node from
 * every directory); only a node's orderly leave is sent to all.
 */
export class StompDirectory {
  private readonly nodes = new Map<string, { info: Omit<NodeInfo, 'lastSeen'>; at: number }>();
  /** This node's id (known from its first beat). */
  private self: string | null = null;
  /** When this node last (re)connected: beats sent while it was away were not heard. */
  private listeningSince = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly client: () => Client,
    private readonly events: string,
    private readonly now: () => number,
  ) {}

  /** A beat heard on the events topic (`connections` null: the node left). */
  heard(beat: NodeBeat): void {
    if (beat.connections === null) this.nodes.delete(beat.id);
    else {
      const info = { id: beat.id, connections: beat.connections, startedAt: beat.startedAt };
      this.nodes.set(beat.id, { info, at: this.now() });
    }
  }

  /** The node (re)connected: the beats it missed while away do not age the others. */
  connected(): void {
    this.listeningSince = this.now();
  }

  async beat(info: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    this.self = info.id;
    this.nodes.set(info.id, { info, at: this.now() });
    await this.send({ t: 'node', ...info });
  }

  beats(): Beat[] {
    const now = this.now();
    return [...this.nodes.values()].map(({ info, at }) => ({
      info,
      at,
      ageMs: now - Math.max(at, this.listeningSince),
    }));
  }

  async forget(nodeId: string): Promise<void> {
    this.nodes.delete(nodeId);
    if (nodeId !== this.self) return;
    await this.send({ t: 'node', id: nodeId, connections: null, startedAt: '' });
  }

  private async send(beat: NodeBeat): Promise<void> {
    await withTimeout(
      sendWithReceipt(this.client(), this.events, JSON.stringify(beat), { persistent: 'false' }),
      BEAT_TIMEOUT_MS,
    );
  }
}
