/**
 * The bench targets: which stack to start and which listener protocol holds a listener on it.
 * A scenario picks targets by id and never needs to know a peer's internals.
 */
import { startEpush } from './epush.js';
import { fayeVersion, startFaye } from './faye.js';
import { bayeuxLongPolling } from './listen-bayeux.js';
import { engineIoPolling } from './listen-engineio.js';
import { epushLongPoll } from './listen-epush-longpoll.js';
import { epushSse } from './listen-epush-sse.js';
import { epushWebSocket } from './listen-epush-ws.js';
import { gripLongPoll } from './listen-grip.js';
import { nchanLongPoll } from './listen-nchan.js';
import { nchanVersion, startNchan } from './nchan.js';
import { PUSHPIN_HINTS, pushpinVersion, startPushpin } from './pushpin.js';
import { socketIoVersion, startSocketIo } from './socketio.js';
import {
  DEFAULT_HINTS,
  type ListenerProtocol,
  type LoadHints,
  type PeerStack,
  type StackOptions,
} from './types.js';

export const TARGET_IDS = [
  'epush-longpoll',
  'epush-sse',
  'epush-ws',
  'nchan',
  'pushpin',
  'socketio',
  'faye',
] as const;
export type TargetId = (typeof TARGET_IDS)[number];

export interface Target {
  readonly id: TargetId;
  /** Label in tables and charts. */
  readonly label: string;
  readonly start: (options: StackOptions) => Promise<PeerStack>;
  /** The packages it runs on, checked before anything starts: throws naming a missing one. */
  readonly packages: () => string;
  readonly protocol: ListenerProtocol;
  readonly hints: LoadHints;
}

export const TARGETS: Readonly<Record<TargetId, Target>> = {
  'epush-longpoll': {
    id: 'epush-longpoll',
    label: 'epush long-poll',
    start: startEpush,
    packages: () => 'epush (this checkout, dist/)',
    protocol: epushLongPoll,
    hints: DEFAULT_HINTS,
  },
  'epush-sse': {
    id: 'epush-sse',
    label: 'epush SSE',
    start: startEpush,
    packages: () => 'epush (this checkout, dist/)',
    protocol: epushSse,
    hints: DEFAULT_HINTS,
  },
  'epush-ws': {
    id: 'epush-ws',
    label: 'epush WebSocket',
    start: startEpush,
    packages: () => 'epush (this checkout, dist/)',
    protocol: epushWebSocket,
    hints: DEFAULT_HINTS,
  },
  nchan: {
    id: 'nchan',
    label: 'nchan long-poll',
    start: startNchan,
    packages: nchanVersion,
    protocol: nchanLongPoll,
    hints: DEFAULT_HINTS,
  },
  pushpin: {
    id: 'pushpin',
    label: 'pushpin GRIP long-poll',
    start: startPushpin,
    packages: pushpinVersion,
    protocol: gripLongPoll,
    hints: PUSHPIN_HINTS,
  },
  socketio: {
    id: 'socketio',
    label: 'socket.io polling',
    start: startSocketIo,
    packages: socketIoVersion,
    protocol: engineIoPolling,
    hints: DEFAULT_HINTS,
  },
  faye: {
    id: 'faye',
    label: 'faye long-polling',
    start: startFaye,
    packages: fayeVersion,
    protocol: bayeuxLongPolling,
    hints: DEFAULT_HINTS,
  },
};

export function isTargetId(value: string): value is TargetId {
  return (TARGET_IDS as readonly string[]).includes(value);
}

/** Parses `--targets a,b,…` (order kept, duplicates dropped); throws naming an unknown one. */
export function parseTargets(list: string): TargetId[] {
  const ids: TargetId[] = [];
  for (const raw of list.split(',')) {
    const id = raw.trim();
    if (id === '') continue;
    if (!isTargetId(id)) {
      throw new Error(`unknown target "${id}" (known: ${TARGET_IDS.join(', ')})`);
    }
    if (!ids.includes(id)) ids.push(id);
  }
  if (ids.length === 0) throw new Error('no target given');
  return ids;
}
