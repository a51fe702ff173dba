/** The figures one node publishes to the dashboard, read from the wire and checked. */

/** One node's sample as the dashboard reads it (docs/protocol.md, `AdminSample` on the server). */
export interface Sample {
  readonly node: string;
  readonly at: number;
  readonly connections: { readonly longPoll: number; readonly sse: number; readonly ws: number };
  readonly listeners: number;
  /** Push IDs held on the node (presence); 0 from a node that does not report it. */
  readonly listening: number;
  readonly openSockets: number;
  readonly published: number;
  readonly delivered: number;
  readonly backplane: {
    readonly up: boolean;
    readonly leader: boolean;
    readonly rtt: number | null;
  };
  readonly rssBytes: number;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

export function fixed(value: number, digits: number): string {
  return num(value).toFixed(digits);
}

/** A sample from the wire, or null when it is not one. */
export function sampleOf(value: unknown): Sample | null {
  if (!isRecord(value) || typeof value.node !== 'string' || typeof value.at !== 'number') {
    return null;
  }
  const { connections, backplane } = value;
  if (!isRecord(connections)) return null;
  const bp = isRecord(backplane) ? backplane : {};
  return {
    node: value.node,
    at: value.at,
    connections: {
      longPoll: num(connections['long-poll']),
      sse: num(connections.sse),
      ws: num(connections.websocket),
    },
    listeners: num(value.listeners),
    listening: num(value.listening),
    openSockets: num(value.openSockets),
    published: num(value.published),
    delivered: num(value.delivered),
    backplane: {
      up: bp.up === true,
      leader: bp.leader === true,
      rtt: typeof bp.rttSeconds === 'number' ? bp.rttSeconds : null,
    },
    rssBytes: num(value.rssBytes),
  };
}
