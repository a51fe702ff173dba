import { EpushError, type ErrorCode } from '../core/errors.js';
import type { ClusterEvent } from '../core/events.js';
import type { Backplane, BackplaneGuarantees, ClusterEventSink } from './backplane.js';

/** The Backplane methods a worker may call on the primary's backplane. */
export const RELAYED_METHODS = [
  'probe',
  'publish',
  'head',
  'readForListener',
  'register',
  'touch',
  'addMember',
  'removeMember',
  'members',
  'isLive',
  'heartbeat',
  'nodes',
  'leave',
] as const;

export type RelayedMethod = (typeof RELAYED_METHODS)[number];

/** Messages between a worker and the primary (node:cluster IPC, "advanced" serialization). */
export type RelayMessage =
  | {
      readonly epush: 'call';
      readonly id: number;
      readonly method: RelayedMethod;
      readonly args: unknown[];
    }
  | { readonly epush: 'result'; readonly id: number; readonly value: unknown }
  | {
      readonly epush: 'failure';
      readonly id: number;
      readonly code: ErrorCode | null;
      readonly message: string;
    }
  | { readonly epush: 'event'; readonly event: ClusterEvent }
  | { readonly epush: 'gap'; readonly seq: number }
  | { readonly epush: 'availability'; readonly up: boolean }
  | { readonly epush: 'hello'; readonly kind: string; readonly guarantees: BackplaneGuarantees };

export function isRelayMessage(value: unknown): value is RelayMessage {
  return typeof value === 'object' && value !== null && 'epush' in value;
}

/** What the worker needs from its process: a way to send to the primary and to hear from it. */
export interface RelayChannel {
  send(message: RelayMessage): void;
  onMessage(listener: (message: RelayMessage) => void): void;
}

/**
 * A worker's view of a backplane that lives in the primary process (how `--workers N` shares
 * the memory backplane): every call is relayed over IPC, and the primary forwards every event to
 * every worker in log order, so the workers behave as nodes of one cluster.
 */
export class IpcBackplane implements Backplane {
  private nextId = 1;
  private readonly calls = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  private sink: ClusterEventSink | null = null;
  private up = true;

  constructor(
    private readonly channel: RelayChannel,
    readonly kind: string,
    readonly guarantees: BackplaneGuarantees,
  ) {
    channel.onMessage((message) => {
      this.receive(message);
    });
  }

  private receive(message: RelayMessage): void {
    switch (message.epush) {
      case 'result':
        this.calls.get(message.id)?.resolve(message.value);
        this.calls.delete(message.id);
        return;
      case 'failure': {
        const error = message.code
          ? new EpushError(message.code, message.message)
          : new Error(message.message);
        this.calls.get(message.id)?.reject(error);
        this.calls.delete(message.id);
        return;
      }
      case 'event':
        this.sink?.onEvent(message.event);
        return;
      case 'gap':
        this.sink?.onGap(message.seq);
        return;
      case 'availability':
        this.up = message.up;
        this.sink?.onAvailability(message.up);
        return;
      case 'call':
      case 'hello':
        return;
    }
  }

  private call<T>(method: RelayedMethod, ...args: unknown[]): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.channel.send({ epush: 'call', id, method, args });
    });
  }

  start(sink: ClusterEventSink): Promise<void> {
    this.sink = sink;
    sink.onAvailability(this.up);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.sink = null;
    return Promise.resolve();
  }

  isUp(): boolean {
    return this.up;
  }

  // The round trip through the primary is the path events take to this worker.
  probe: Backplane['probe'] = () => this.call('probe');
  publish: Backplane['publish'] = (draft) => this.call('publish', draft);
  head: Backplane['head'] = () => this.call('head');
  readForListener: Backplane['readForListener'] = (from, pushIds, limit) =>
    this.call('readForListener', from, pushIds, limit);
  register: Backplane['register'] = (pushIds) => this.call('register', pushIds);
  touch: Backplane['touch'] = (pushIds) => this.call('touch', pushIds);
  addMember: Backplane['addMember'] = (group, pushId) => this.call('addMember', group, pushId);
  removeMember: Backplane['removeMember'] = (group, pushId) =>
    this.call('removeMember', group, pushId);
  members: Backplane['members'] = (group) => this.call('members', group);
  isLive: Backplane['isLive'] = (pushId) => this.call('isLive', pushId);
  heartbeat: Backplane['heartbeat'] = (node) => this.call('heartbeat', node);
  nodes: Backplane['nodes'] = () => this.call('nodes');
  leave: Backplane['leave'] = (nodeId) => this.call('leave', nodeId);
}

/**
 * The primary's side: serves one backplane to every worker and forwards its events to all of
 * them. Workers that are gone are skipped.
 */
export class BackplaneRelay implements ClusterEventSink {
  private readonly workers = new Set<RelayChannel>();

  constructor(private readonly backplane: Backplane) {}

  start(): Promise<void> {
    return this.backplane.start(this);
  }

  attach(worker: RelayChannel): void {
    this.workers.add(worker);
    worker.onMessage((message) => {
      if (message.epush === 'call')
        void this.serve(worker, message.id, message.method, message.args);
    });
  }

  detach(worker: RelayChannel): void {
    this.workers.delete(worker);
  }

  private async serve(
    worker: RelayChannel,
    id: number,
    method: RelayedMethod,
    args: unknown[],
  ): Promise<void> {
    if (!RELAYED_METHODS.includes(method)) {
      worker.send({
        epush: 'failure',
        id,
        code: null,
        message: `unknown backplane method ${method}`,
      });
      return;
    }
    try {
      const target = this.backplane as unknown as Record<
        RelayedMethod,
        (...a: unknown[]) => Promise<unknown>
      >;
      const value = await target[method](...args);
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

  onEvent(event: ClusterEvent): void {
    for (const worker of this.workers) worker.send({ epush: 'event', event });
  }

  onGap(seq: number): void {
    for (const worker of this.workers) worker.send({ epush: 'gap', seq });
  }

  onAvailability(up: boolean): void {
    for (const worker of this.workers) worker.send({ epush: 'availability', up });
  }
}
