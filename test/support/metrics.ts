/** Reading a node's `GET /metrics` (Prometheus text) in tests. */

/** Every sample of `GET <url>/metrics`, by series as printed: `name` or `name{labels}`. */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`);
  const text = await response.text();
  if (response.status !== 200) {
    throw new Error(`GET ${url}/metrics answered ${response.status}: ${text.slice(0, 200)}`);
  }
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    // The value is the last field; a label value may hold spaces.
    const space = line.lastIndexOf(' ');
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** One series' sample, or null when the node prints none (e.g. a counter never used yet). */
export async function metricSample(url: string, series: string): Promise<number | null> {
  return (await scrapeMetrics(url)).get(series) ?? null;
}

/** One series' sample that must be there: throws naming the series when it is missing. */
export async function requiredMetric(url: string, series: string): Promise<number> {
  const value = await metricSample(url, series);
  if (value === null) throw new Error(`no ${series} in ${url}/metrics`);
  return value;
}

/** `epush_connections{transport}` by transport (long-poll, sse, websocket). */
export async function connectionsByTransport(url: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const [series, value] of await scrapeMetrics(url)) {
    const match = /^epush_connections\{transport="([a-z-]+)"\}$/.exec(series);
    if (match) out[match[1]!] = value;
  }
  return out;
}
