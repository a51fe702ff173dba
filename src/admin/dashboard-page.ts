/**
 * The `/admin` pages: the key form and the dashboard shell (its figures are filled in by
 * `dashboard.js`, built from browser/dashboard.ts), and their one stylesheet. No inline script or
 * style anywhere, so the pages run under `default-src 'self'`.
 */

/** HTML-escapes text for element content and double-quoted attribute values. */
function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function head(basePath: string, title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)}</title>
<link rel="stylesheet" href="${escapeHtml(basePath)}/admin/dashboard.css">
</head>`;
}

/** The key form (docs/protocol.md: 401 with the form); `message` says why the last attempt failed. */
export function loginPage(basePath: string, message: string | null): string {
  const base = escapeHtml(basePath);
  const error =
    message === null ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>\n`;
  return `${head(basePath, 'epush: admin login')}
<body class="login">
<main>
<h1>epush <span class="sub">admin</span></h1>
<p>The dashboard needs an API key of this cluster (one without a <code>groups=</code> scope;
a <code>read-only</code> key is enough). The key is not stored: the browser keeps a signed
session cookie for 12 hours.</p>
${error}<form method="post" action="${base}/admin">
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Open the dashboard</button>
</form>
</main>
</body>
</html>
`;
}

/** The dashboard shell; `periodSeconds` is the nodes' sampling period. */
export function dashboardPage(basePath: string, periodSeconds: number): string {
  const base = escapeHtml(basePath);
  const figure = (id: string, label: string, extra = ''): string =>
    `<div class="card"><div class="label">${label}</div><div class="figure" id="${id}">-</div>${extra}</div>`;
  const chart = (id: string, label: string): string =>
    `<figure class="chart"><figcaption>${label}</figcaption><div id="${id}"></div></figure>`;
  return `${head(basePath, 'epush: cluster dashboard')}
<body class="dashboard" data-base="${base}" data-period="${periodSeconds}">
<header>
<h1>epush <span class="sub">cluster dashboard</span></h1>
<span id="live-status" class="status">connecting</span>
<form method="post" action="${base}/admin/logout"><button type="submit" class="link">Log out</button></form>
</header>
<main>
<section class="cards">
${figure('sum-nodes', 'nodes reporting')}
${figure('sum-connections', 'listener connections', '<div class="detail" id="sum-transports"></div>')}
${figure('sum-listeners', 'waiting listens')}
${figure('sum-listening', 'listening push IDs')}
${figure('sum-publish', 'published / s')}
${figure('sum-deliver', 'delivered / s')}
${figure('sum-backplane', 'backplane', '<div class="detail" id="backplane-kind"></div>')}
</section>
<section class="charts">
${chart('chart-publish', 'published / s (cluster)')}
${chart('chart-deliver', 'delivered / s (cluster)')}
${chart('chart-connections', 'listener connections (cluster)')}
</section>
<section>
<h2>Nodes</h2>
<table id="nodes">
<thead><tr>
<th>node</th><th>state</th><th class="num">long-poll</th><th class="num">SSE</th>
<th class="num">WebSocket</th><th class="num">listens</th><th class="num">listening</th><th class="num">sockets</th>
<th class="num">publ./s</th><th class="num">deliv./s</th><th>backplane</th>
<th class="num">rtt ms</th><th class="num">RSS MB</th><th>last seen</th><th>delivered / s</th>
</tr></thead>
<tbody id="node-rows"></tbody>
</table>
<p class="note">Each node publishes its figures every ${periodSeconds} s to the reserved group
<code>epush.admin</code> while a dashboard is open; a node silent for three periods is shown
stale. Rates are per node and per second, from the node's counters; deliveries include the
dashboards' own.</p>
</section>
</main>
<script src="${base}/epush.js"></script>
<script src="${base}/admin/dashboard.js"></script>
</body>
</html>
`;
}

/** The pages' stylesheet (`GET <basePath>/admin/dashboard.css`). */
export const DASHBOARD_CSS = `:root {
  color-scheme: light;
  --fg: #1d2430;
  --muted: #667085;
  --line: #d0d5dd;
  --bg: #f6f7f9;
  --card: #ffffff;
  --accent: #2563eb;
  --ok: #16803c;
  --bad: #c0262d;
  font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif;
  font-size: 14px;
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
h1 { font-size: 20px; margin: 0; }
h1 .sub { color: var(--muted); font-weight: normal; }
h2 { font-size: 16px; margin: 24px 0 8px; }
code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
header { display: flex; align-items: center; gap: 16px; padding: 12px 24px;
  background: var(--card); border-bottom: 1px solid var(--line); }
header form { margin-left: auto; }
main { padding: 16px 24px 32px; }
.status { padding: 2px 10px; border-radius: 10px; background: var(--bg); color: var(--muted); }
.status.ok { color: var(--ok); }
.status.bad { color: var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
.card, .chart { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; margin: 0; }
.label, figcaption, .detail, .note { color: var(--muted); font-size: 12px; }
.figure { font-size: 24px; font-weight: 600; margin-top: 4px; font-variant-numeric: tabular-nums; }
.figure.ok { color: var(--ok); }
.figure.bad { color: var(--bad); }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(270px, 1fr)); gap: 12px;
  margin-top: 12px; }
.spark { display: block; overflow: visible; }
.spark .line { fill: none; stroke: var(--accent); stroke-width: 1.5; stroke-linejoin: round;
  vector-effect: non-scaling-stroke; }
.spark .baseline { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
.chart .spark { margin-top: 6px; }
table { border-collapse: collapse; width: 100%; background: var(--card);
  border: 1px solid var(--line); }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: left;
  white-space: nowrap; }
th { font-weight: 600; color: var(--muted); font-size: 12px; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.stale td { color: var(--muted); background: #fbf3e6; }
tr.stale td.state { color: var(--bad); font-weight: 600; }
tr.live td.state { color: var(--ok); }
td.backplane.down { color: var(--bad); font-weight: 600; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
button.link { background: none; color: var(--accent); border-color: var(--line); }
body.login main { max-width: 420px; margin: 10vh auto; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; padding: 24px; }
body.login form { display: grid; gap: 8px; margin-top: 16px; }
body.login input { font: inherit; padding: 8px; border: 1px solid var(--line); border-radius: 6px; }
.error { color: var(--bad); font-weight: 600; }
`;
