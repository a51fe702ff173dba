import { EpushError, type ErrorCode } from '../../core/errors.js';
import type { EventDraft } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type { BackplaneGuarantees, NodeInfo } from '../backplane.js';
import type {
  AppendOnceOutcome,
  BackplaneDriver,
  Beat,
  ChangeOutcome,
  DriverLink,
  LogEntry,
  LogHead,
  MembershipChange,
  PresenceEntry,
  PresenceWrite,
  StampedDraft,
} from '../driver.js';

/** The driver methods a worker calls on the primary's store. */
export const RELAYED_METHODS = [
  'head',
  'append',
  'appendOnce',
  'read',
  'trim',
  'sendProbe',
  'change',
  'histories',
  'members',
  'register',
  'touch',
  'isLive',
  'dueForExpiry',
  'beat',
  'beats',
  'forget',
  'presenceRead',
  'presenceWrite',
  'presenceDue',
  'presenceHeldBy',
  'presenceHolders',
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
  | { readonly epush: 'entry'; readonly epoch: string; readonly entry: LogEntry }
  | { readonly epush: 'probe'; readonly token: string }
  | { readonly epush: 'link'; readonly up: boolean };

export function isRelayMessage(value: unknown): value is RelayMessage {
  return typeof value === 'object' && value !== null && 'epush' in value;
}

/** What the worker needs from its process: a way to send to the primary and to hear from it. */
export interface RelayChannel {
  send(message: RelayMessage): void;
  onMessage(listener: (message: RelayMessage) => void): void;
}

/** Histories cross the process boundary in their stored text form. */
export type EncodedHistories = [PushId, [GroupName, string][]][];

/**
 * A worker's driver for the memory store that lives in the primary process (how `--workers N`
 * shares the memory backplane): every call is relayed over IPC, and the primary forwards the
 * store's log entries to every worker, so each worker runs the cluster protocol as a node of one
 * cluster. The IPC channel is trusted (the same program on both ends).
 */
export class IpcDriver implements BackplaneDriver {
  readonly kind: string;
  readonly vendor = 'the primary process';
  private nextId = 1;
  private readonly calls = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  private link: DriverLink | null = null;

  constructor(
    private readonly channel: RelayChannel,
    kind: string,
    readonly guarantees: BackplaneGuarantees,
  ) {
    this.kind = kind;
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
      case 'entry':
        this.link?.entry(message.epoch, message.entry);
        return;
      case 'probe':
        this.link?.probe(message.token);
        return;
      case 'link':
        this.link?.link(message.up);
        return;
      case 'call':
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

  connect(link: DriverLink): Promise<void> {
    this.link = link;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.link = null;
    return Promise.resolve();
  }

  isUp(): boolean {
    return true;
  }

  head = (): Promise<LogHead> => this.call('head');
  append = (draft: EventDraft): Promise<number> => this.call('append', draft);
  appendOnce = (draft: StampedDraft, retentionMs: number): Promise<AppendOnceOutcome> =>
    this.call('appendOnce', draft, retentionMs);
  read = (first: number, last: number): Promise<LogEntry[]> => this.call('read', first, last);
  trim = (retentionMs: number): Promise<void> => this.call('trim', retentionMs);
  // The round trip through the primary is the path entries take to this worker.
  sendProbe = (token: string): Promise<void> => this.call('sendProbe', token);
  change = (change: MembershipChange): Promise<ChangeOutcome> => this.call('change', change);
  members = (group: GroupName): Promise<PushId[]> => this.call('members', group);
  register = (pushIds: readonly PushId[]): Promise<void> => this.call('register', pushIds);
  touch = (pushIds: readonly PushId[]): Promise<PushId[]> => this.call('touch', pushIds);
  isLive = (pushId: PushId): Promise<boolean> => this.call('isLive', pushId);
  dueForExpiry = (limit: number): Promise<PushId[]> => this.call('dueForExpiry', limit);
  beat = (info: Omit<NodeInfo, 'lastSeen'>): Promise<void> => this.call('beat', info);
  beats = (): Promise<Beat[]> => this.call('beats');
  forget = (nodeId: string): Promise<void> => this.call('forget', nodeId);
  // Presence: the primary's store decides every compare-and-set (Maps cross IPC as they are).
  presenceRead = (pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>> =>
    this.call('presenceRead', pushIds);
  presenceWrite = (
    pushId: PushId,
    expected: number,
    write: PresenceWrite,
  ): Promise<number | null> => this.call('presenceWrite', pushId, expected, write);
  presenceDue = (until: number, limit: number): Promise<PushId[]> =>
    this.call('presenceDue', until, limit);
  presenceHeldBy = (nodeId: string, limit: number): Promise<PushId[]> =>
    this.call('presenceHeldBy', nodeId, limit);
  presenceHolders = (): Promise<string[]> => this.call('presenceHolders');

  async histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    const encoded = await this.call<EncodedHistories>('histories', pushIds);
    return new Map(encoded.map(([pushId, pairs]) => [pushId, MembershipHistory.decode(pairs)]));
  }
}
