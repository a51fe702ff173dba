/**
 * The `/admin` dashboard's browser script, served as `GET <basePath>/admin/dashboard.js`.
 *
 * It is kept here as a string rather than compiled from its own file: the server's tsconfig has
 * no DOM library, the client build (client/build.mjs) is the browser client's alone, and a
 * string in a module works the same from source (tsx), from `dist/` and from the published
 * package, with nothing to copy. It has no dependency but the browser client (`/epush.js`,
 * global `EPush`), uses no `eval`, no inline handlers and no `style` attributes, so the page's
 * strict Content-Security-Policy holds. The e2e test (test/e2e/admin-dashboard.test.ts) runs it.
 *
 * What it does: `POST admin/session` (the session cookie authenticates it) mints a push ID in
 * the reserved group `epush.admin` and returns the current figures; the page then listens on
 * that push ID with the browser client, and every node publishes its sample to the group every
 * period. The page keeps the last samples per node and draws rates from counter deltas.
 */
export const DASHBOARD_SCRIPT = String.raw`(function () {
  'use strict';
  var MAX_SAMPLES = 60;
  var STALE_PERIODS = 3;
  var MIN_SPAN = 15;
  var SVG = 'http://www.w3.org/2000/svg';
  var body = document.body;
  var base = body.getAttribute('data-base') || '';
  var periodMs = (Number(body.getAttribute('data-period')) || 2) * 1000;
  var loadedAt = Date.now();
  /** node id -> { id, heartbeat, samples, publish, deliver, connections, seenAt } */
  var nodes = new Map();
  var cluster = { publish: [], deliver: [], connections: [] };
  var backplaneKind = '';
  var session = null;
  var push = null;
  var stopListening = null;

  function byId(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function keep(list, value) {
    list.push(value);
    if (list.length > MAX_SAMPLES) list.splice(0, list.length - MAX_SAMPLES);
  }

  function num(value) {
    return typeof value === 'number' && isFinite(value) ? value : 0;
  }

  function fixed(value, digits) {
    return num(value).toFixed(digits);
  }

  function setStatus(text, kind) {
    var status = byId('live-status');
    status.textContent = text;
    status.className = 'status ' + (kind || '');
  }

  /**
   * An inline SVG sparkline of the values (newest right); data-points is for tests. A fluid one
   * stretches to its container's width (its strokes do not scale, see the stylesheet).
   */
  function sparkline(values, width, height, className, fluid) {
    var svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', fluid ? '100%' : String(width));
    svg.setAttribute('height', String(height));
    if (fluid) svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('class', 'spark ' + (className || ''));
    svg.setAttribute('data-points', String(values.length));
    var max = 0;
    values.forEach(function (v) {
      if (v > max) max = v;
    });
    var title = document.createElementNS(SVG, 'title');
    title.textContent = values.length
      ? 'last ' + fixed(values[values.length - 1], 1) + ', max ' + fixed(max, 1)
      : 'no data yet';
    svg.appendChild(title);
    var baseline = document.createElementNS(SVG, 'line');
    baseline.setAttribute('x1', '0');
    baseline.setAttribute('x2', String(width));
    baseline.setAttribute('y1', String(height - 0.5));
    baseline.setAttribute('y2', String(height - 0.5));
    baseline.setAttribute('class', 'baseline');
    svg.appendChild(baseline);
    if (values.length >= 2) {
      // A short history still reads as a line: at least MIN_SPAN points across the width.
      var step = width / (Math.max(values.length, MIN_SPAN) - 1);
      var offset = width - step * (values.length - 1);
      var points = values.map(function (v, i) {
        var y = max > 0 ? height - 1 - (v / max) * (height - 3) : height - 1;
        return fixed(offset + i * step, 1) + ',' + fixed(y, 1);
      });
      var line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', points.join(' '));
      line.setAttribute('class', 'line');
      svg.appendChild(line);
    }
    return svg;
  }

  function entryOf(id) {
    var entry = nodes.get(id);
    if (!entry) {
      entry = {
        id: id,
        heartbeat: null,
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

  function totalConnections(sample) {
    var c = sample.connections || {};
    return num(c['long-poll']) + num(c.sse) + num(c.websocket);
  }

  /** Per second, from two samples of the same counter; a restarted node counts from 0 again. */
  function rate(previous, current, field) {
    var seconds = (num(current.at) - num(previous.at)) / 1000;
    if (seconds <= 0) return 0;
    return Math.max(0, (num(current[field]) - num(previous[field])) / seconds);
  }

  function isSample(value) {
    return (
      value !== null &&
      typeof value === 'object' &&
      typeof value.node === 'string' &&
      typeof value.at === 'number' &&
      value.connections !== null &&
      typeof value.connections === 'object'
    );
  }

  function onSample(sample) {
    if (!isSample(sample)) return;
    var entry = entryOf(sample.node);
    var previous = entry.samples[entry.samples.length - 1];
    if (previous && sample.at <= previous.at) return; // the snapshot's copy, or a late one
    keep(entry.samples, sample);
    if (previous) {
      keep(entry.publish, rate(previous, sample, 'published'));
      keep(entry.deliver, rate(previous, sample, 'delivered'));
    }
    keep(entry.connections, totalConnections(sample));
    entry.seenAt = Date.now();
    render();
  }

  function isStale(entry, now) {
    var since = entry.seenAt || loadedAt;
    return now - since > STALE_PERIODS * periodMs;
  }

  function last(list) {
    return list.length ? list[list.length - 1] : 0;
  }

  /** One point per period on the cluster charts: the sum over the nodes still reporting. */
  function sampleCluster() {
    var now = Date.now();
    var publish = 0;
    var deliver = 0;
    var connections = 0;
    var any = false;
    nodes.forEach(function (entry) {
      if (!entry.samples.length || isStale(entry, now)) return;
      any = true;
      publish += last(entry.publish);
      deliver += last(entry.deliver);
      connections += totalConnections(entry.samples[entry.samples.length - 1]);
    });
    if (!any) return;
    keep(cluster.publish, publish);
    keep(cluster.deliver, deliver);
    keep(cluster.connections, connections);
  }

  function ago(ms) {
    var seconds = Math.max(0, Math.round(ms / 1000));
    return seconds < 120 ? seconds + ' s ago' : Math.round(seconds / 60) + ' min ago';
  }

  function cell(row, className, text) {
    var td = el('td', className, text);
    row.appendChild(td);
    return td;
  }

  function renderRow(entry, now) {
    var sample = entry.samples[entry.samples.length - 1];
    var stale = isStale(entry, now);
    var row = el('tr', stale ? 'stale' : sample ? 'live' : 'waiting');
    row.setAttribute('data-node', entry.id);
    cell(row, 'node', entry.id);
    cell(row, 'state', stale ? 'stale' : sample ? 'live' : 'waiting');
    if (sample) {
      cell(row, 'num lp', num(sample.connections['long-poll']));
      cell(row, 'num sse', num(sample.connections.sse));
      cell(row, 'num ws', num(sample.connections.websocket));
      cell(row, 'num listeners', num(sample.listeners));
      cell(row, 'num sockets', num(sample.openSockets));
      cell(row, 'num publish', fixed(last(entry.publish), 1));
      cell(row, 'num deliver', fixed(last(entry.deliver), 1));
      var bp = sample.backplane || {};
      var backplane = cell(
        row,
        'backplane ' + (bp.up ? 'up' : 'down'),
        (bp.up ? 'up' : 'DOWN') + (bp.leader ? ' (leader)' : ''),
      );
      backplane.title = backplaneKind;
      cell(row, 'num rtt', typeof bp.rttSeconds === 'number' ? fixed(bp.rttSeconds * 1000, 1) : '-');
      cell(row, 'num rss', fixed(num(sample.rssBytes) / 1048576, 0));
    } else {
      var hb = entry.heartbeat;
      var waiting = cell(row, 'num pending', hb ? num(hb.connections) + ' conn.' : '');
      waiting.colSpan = 10;
    }
    cell(row, 'seen', entry.seenAt ? ago(now - entry.seenAt) : '-');
    var charts = cell(row, 'charts');
    charts.appendChild(sparkline(entry.deliver, 120, 24, 'deliver'));
    return row;
  }

  function render() {
    var now = Date.now();
    var ids = Array.from(nodes.keys()).sort();
    var rows = ids.map(function (id) {
      return renderRow(nodes.get(id), now);
    });
    byId('node-rows').replaceChildren.apply(byId('node-rows'), rows);
    var live = 0;
    var lp = 0;
    var sse = 0;
    var ws = 0;
    var listeners = 0;
    var publish = 0;
    var deliver = 0;
    var down = 0;
    nodes.forEach(function (entry) {
      var sample = entry.samples[entry.samples.length - 1];
      if (!sample || isStale(entry, now)) return;
      live += 1;
      lp += num(sample.connections['long-poll']);
      sse += num(sample.connections.sse);
      ws += num(sample.connections.websocket);
      listeners += num(sample.listeners);
      publish += last(entry.publish);
      deliver += last(entry.deliver);
      if (!(sample.backplane && sample.backplane.up)) down += 1;
    });
    byId('sum-nodes').textContent = live + ' / ' + nodes.size;
    byId('sum-connections').textContent = String(lp + sse + ws);
    byId('sum-transports').textContent =
      'long-poll ' + lp + ' · SSE ' + sse + ' · WebSocket ' + ws;
    byId('sum-listeners').textContent = String(listeners);
    byId('sum-publish').textContent = fixed(publish, 1);
    byId('sum-deliver').textContent = fixed(deliver, 1);
    var health = byId('sum-backplane');
    health.textContent = live === 0 ? '-' : down === 0 ? 'up' : down + ' node(s) down';
    health.className = 'figure ' + (live === 0 ? '' : down === 0 ? 'ok' : 'bad');
    byId('backplane-kind').textContent = backplaneKind;
    [
      ['chart-publish', cluster.publish],
      ['chart-deliver', cluster.deliver],
      ['chart-connections', cluster.connections],
    ].forEach(function (pair) {
      var holder = byId(pair[0]);
      holder.replaceChildren(sparkline(pair[1], 240, 48, pair[0], true));
    });
  }

  function listenOn(pushId) {
    if (stopListening) stopListening();
    stopListening = push.listen(pushId, function (notification) {
      onSample(notification.payload);
    });
  }

  function startSession() {
    return fetch(base + '/admin/session', {
      method: 'POST',
      headers: { 'X-Epush-Admin': '1' },
      credentials: 'same-origin',
      cache: 'no-store',
    })
      .then(function (response) {
        if (response.status === 401 || response.status === 403) {
          location.assign(base + '/admin'); // the session ended: back to the key form
          return null;
        }
        if (!response.ok) throw new Error('POST admin/session answered ' + response.status);
        return response.json();
      })
      .then(function (answer) {
        if (!answer) return;
        session = answer;
        var snapshot = answer.snapshot || {};
        backplaneKind = snapshot.backplane || '';
        (snapshot.nodes || []).forEach(function (node) {
          if (node && typeof node.id === 'string') entryOf(node.id).heartbeat = node;
        });
        onSample(snapshot.sample);
        render();
        listenOn(answer.pushId);
      })
      .catch(function (error) {
        setStatus('cannot start: ' + error.message + ' (retrying)', 'bad');
        setTimeout(startSession, periodMs * 2);
      });
  }

  if (typeof EPush === 'undefined') {
    setStatus('the browser client ' + base + '/epush.js did not load', 'bad');
    return;
  }
  push = EPush.connect({ url: location.origin + base });
  push.on('status', function (status) {
    setStatus(status, status === 'connected' ? 'ok' : status === 'connecting' ? '' : 'bad');
  });
  push.on('expired', function (pushIds) {
    // The push ID expired (the page slept past its TTL): start a new session.
    if (session && pushIds.indexOf(session.pushId) !== -1) void startSession();
  });
  setInterval(function () {
    sampleCluster();
    render();
  }, periodMs);
  setInterval(render, 1000);
  render();
  void startSession();
})();
`;
