/**
 * The `/admin` dashboard's browser script, served as `GET <basePath>/admin/dashboard.js`: built
 * by `build.mjs` (esbuild, one classic script) into `dist/admin/dashboard.js`, type-checked
 * against the DOM library and the browser client's own types (`tsconfig.json` here) and linted
 * like the server. It has no dependency but the browser client (`/epush.js`, global `EPush`),
 * uses no `eval`, no inline handlers and no `style` attributes, so the page's strict
 * Content-Security-Policy holds. The e2e test (test/e2e/admin-dashboard.test.ts) runs it.
 *
 * What it does: `POST admin/session` (the session cookie authenticates it) mints a push ID in
 * the reserved group `epush.admin` and returns the current figures; the page then listens on
 * that push ID with the browser client, and every node publishes its sample to the group every
 * period. The page keeps the last samples per node and draws rates from counter deltas. Every
 * value from the wire is checked before use: a malformed sample is ignored, not drawn.
 */
import type * as EPushLibrary from '../../../client/src/index.js';
import type { EPushClient } from '../../../client/src/index.js';
import { fixed, isRecord, num, sampleOf, type Sample } from './sample.js';
import { last, sparkline } from './sparkline.js';

declare global {
  /** The browser client's global, set by `/epush.js`; undefined when it did not load. */
  var EPush: typeof EPushLibrary | undefined;
}

const MAX_SAMPLES = 60;
const STALE_PERIODS = 3;

interface NodeEntry {
  readonly id: string;
  /** Connections of the node's last heartbeat, until its first sample arrives. */
  heartbeatConnections: number | null;
  readonly samples: Sample[];
  readonly publish: number[];
  readonly deliver: number[];
  readonly connections: number[];
  seenAt: number;
}

const body = document.body;
const base = body.getAttribute('data-base') ?? '';
const periodMs = (Number(body.getAttribute('data-period')) || 2) * 1000;
const loadedAt = Date.now();
const nodes = new Map<string, NodeEntry>();
const cluster = { publish: [] as number[], deliver: [] as number[], connections: [] as number[] };
let backplaneKind = '';
let sessionPushId: string | null = null;
let stopListening: (() => void) | null = null;

function byId(id: string): HTMLElement {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`the page has no #${id}`);
  return found;
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string | number,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className !== '') node.className = className;
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function keep<T>(list: T[], value: T): void {
  list.push(value);
  if (list.length > MAX_SAMPLES) list.splice(0, list.length - MAX_SAMPLES);
}

function setStatus(text: string, kind: string): void {
  const status = byId('live-status');
  status.textContent = text;
  status.className = `status ${kind}`;
}

function entryOf(id: string): NodeEntry {
  let entry = nodes.get(id);
  if (entry === undefined) {
    entry = {
      id,
      heartbeatConnections: null,
      samples: [],
      publish: [],
      deliver: [],
      connections: [],
      seenAt: 0,
    };
    nodes.set(id, entry);
  }
  return entry;
}

function totalConnections(sample: Sample): number {
  const { longPoll, sse, ws } = sample.connections;
  return longPoll + sse + ws;
}

/** Per second, from two samples of the same counter; a restarted node counts from 0 again. */
function rate(previous: Sample, current: Sample, field: 'published' | 'delivered'): number {
  const seconds = (current.at - previous.at) / 1000;
  if (seconds <= 0) return 0;
  return Math.max(0, (current[field] - previous[field]) / seconds);
}

function onSample(value: unknown): void {
  const sample = sampleOf(value);
  if (sample === null) return;
  const entry = entryOf(sample.node);
  const previous = entry.samples[entry.samples.length - 1];
  if (previous !== undefined && sample.at <= previous.at) return; // the snapshot's copy, or late
  keep(entry.samples, sample);
  if (previous !== undefined) {
    keep(entry.publish, rate(previous, sample, 'published'));
    keep(entry.deliver, rate(previous, sample, 'delivered'));
  }
  keep(entry.connections, totalConnections(sample));
  entry.seenAt = Date.now();
  render();
}

function isStale(entry: NodeEntry, now: number): boolean {
  const since = entry.seenAt || loadedAt;
  return now - since > STALE_PERIODS * periodMs;
}

/** One point per period on the cluster charts: the sum over the nodes still reporting. */
function sampleCluster(): void {
  const now = Date.now();
  let publish = 0;
  let deliver = 0;
  let connections = 0;
  let any = false;
  for (const entry of nodes.values()) {
    const sample = entry.samples[entry.samples.length - 1];
    if (sample === undefined || isStale(entry, now)) continue;
    any = true;
    publish += last(entry.publish);
    deliver += last(entry.deliver);
    connections += totalConnections(sample);
  }
  if (!any) return;
  keep(cluster.publish, publish);
  keep(cluster.deliver, deliver);
  keep(cluster.connections, connections);
}

function ago(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return seconds < 120 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function cell(row: HTMLTableRowElement, className: string, text?: string | number) {
  const td = el('td', className, text);
  row.appendChild(td);
  return td;
}

function renderRow(entry: NodeEntry, now: number): HTMLTableRowElement {
  const sample = entry.samples[entry.samples.length - 1];
  const stale = isStale(entry, now);
  const state = stale ? 'stale' : sample !== undefined ? 'live' : 'waiting';
  const row = el('tr', state);
  row.setAttribute('data-node', entry.id);
  cell(row, 'node', entry.id);
  cell(row, 'state', state);
  if (sample !== undefined) {
    cell(row, 'num lp', sample.connections.longPoll);
    cell(row, 'num sse', sample.connections.sse);
    cell(row, 'num ws', sample.connections.ws);
    cell(row, 'num listeners', sample.listeners);
    cell(row, 'num listening', sample.listening);
    cell(row, 'num sockets', sample.openSockets);
    cell(row, 'num publish', fixed(last(entry.publish), 1));
    cell(row, 'num deliver', fixed(last(entry.deliver), 1));
    const bp = sample.backplane;
    const backplane = cell(
      row,
      `backplane ${bp.up ? 'up' : 'down'}`,
      (bp.up ? 'up' : 'DOWN') + (bp.leader ? ' (leader)' : ''),
    );
    backplane.title = backplaneKind;
    cell(row, 'num rtt', bp.rtt !== null ? fixed(bp.rtt * 1000, 1) : '-');
    cell(row, 'num rss', fixed(sample.rssBytes / 1048576, 0));
  } else {
    const hb = entry.heartbeatConnections;
    const waiting = cell(row, 'num pending', hb !== null ? `${hb} conn.` : '');
    waiting.colSpan = 11;
  }
  cell(row, 'seen', entry.seenAt ? ago(now - entry.seenAt) : '-');
  const charts = cell(row, 'charts');
  charts.appendChild(sparkline(entry.deliver, 120, 24, 'deliver'));
  return row;
}

function render(): void {
  const now = Date.now();
  const rows = [...nodes.keys()].sort().flatMap((id) => {
    const entry = nodes.get(id);
    return entry === undefined ? [] : [renderRow(entry, now)];
  });
  byId('node-rows').replaceChildren(...rows);
  let live = 0;
  let lp = 0;
  let sse = 0;
  let ws = 0;
  let listeners = 0;
  let listening = 0;
  let publish = 0;
  let deliver = 0;
  let down = 0;
  for (const entry of nodes.values()) {
    const sample = entry.samples[entry.samples.length - 1];
    if (sample === undefined || isStale(entry, now)) continue;
    live += 1;
    lp += sample.connections.longPoll;
    sse += sample.connections.sse;
    ws += sample.connections.ws;
    listeners += sample.listeners;
    listening += sample.listening;
    publish += last(entry.publish);
    deliver += last(entry.deliver);
    if (!sample.backplane.up) down += 1;
  }
  byId('sum-nodes').textContent = `${live} / ${nodes.size}`;
  byId('sum-connections').textContent = String(lp + sse + ws);
  byId('sum-transports').textContent = `long-poll ${lp} · SSE ${sse} · WebSocket ${ws}`;
  byId('sum-listeners').textContent = String(listeners);
  byId('sum-listening').textContent = String(listening);
  byId('sum-publish').textContent = fixed(publish, 1);
  byId('sum-deliver').textContent = fixed(deliver, 1);
  const health = byId('sum-backplane');
  health.textContent = live === 0 ? '-' : down === 0 ? 'up' : `${down} node(s) down`;
  health.className = `figure ${live === 0 ? '' : down === 0 ? 'ok' : 'bad'}`;
  byId('backplane-kind').textContent = backplaneKind;
  const charts: [string, readonly number[]][] = [
    ['chart-publish', cluster.publish],
    ['chart-deliver', cluster.deliver],
    ['chart-connections', cluster.connections],
  ];
  for (const [id, values] of charts) {
    byId(id).replaceChildren(sparkline(values, 240, 48, id, true));
  }
}

function listenOn(client: EPushClient, pushId: string): void {
  stopListening?.();
  stopListening = client.listen(pushId, (notification) => {
    onSample(notification.payload);
  });
}

/** Applies the answer of `POST admin/session`: the snapshot, then listening on its push ID. */
function startFrom(client: EPushClient, answer: unknown): void {
  if (!isRecord(answer) || typeof answer.pushId !== 'string') {
    throw new Error('POST admin/session did not answer {"pushId", "snapshot"}');
  }
  sessionPushId = answer.pushId;
  const snapshot = isRecord(answer.snapshot) ? answer.snapshot : {};
  backplaneKind = typeof snapshot.backplane === 'string' ? snapshot.backplane : '';
  const heartbeats: unknown[] = Array.isArray(snapshot.nodes) ? snapshot.nodes : [];
  for (const node of heartbeats) {
    if (isRecord(node) && typeof node.id === 'string') {
      entryOf(node.id).heartbeatConnections = num(node.connections);
    }
  }
  onSample(snapshot.sample);
  render();
  listenOn(client, answer.pushId);
}

async function startSession(client: EPushClient): Promise<void> {
  try {
    const response = await fetch(`${base}/admin/session`, {
      method: 'POST',
      headers: { 'X-Epush-Admin': '1' },
      credentials: 'same-origin',
      cache: 'no-store',
    });
    if (response.status === 401 || response.status === 403) {
      location.assign(`${base}/admin`); // the session ended: back to the key form
      return;
    }
    if (!response.ok) throw new Error(`POST admin/session answered ${response.status}`);
    startFrom(client, await response.json());
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    setStatus(`cannot start: ${message} (retrying)`, 'bad');
    setTimeout(() => void startSession(client), periodMs * 2);
  }
}

function main(): void {
  const library = globalThis.EPush;
  if (library === undefined) {
    setStatus(`the browser client ${base}/epush.js did not load`, 'bad');
    return;
  }
  const client = library.connect({ url: location.origin + base });
  client.on('status', (status) => {
    setStatus(status, status === 'connected' ? 'ok' : status === 'connecting' ? '' : 'bad');
  });
  client.on('expired', (pushIds) => {
    // The push ID expired (the page slept past its TTL): start a new session.
    if (sessionPushId !== null && pushIds.includes(sessionPushId)) void startSession(client);
  });
  setInterval(() => {
    sampleCluster();
    render();
  }, periodMs);
  setInterval(render, 1000);
  render();
  void startSession(client);
}

main();
