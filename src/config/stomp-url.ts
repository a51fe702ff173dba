/** The `--backplane stomp://…` URL. Pure, so the config loader can check it without a broker. */

/** Where and as whom to connect, parsed from `stomp://user:pass@host:port[?prefix=name]`. */
export interface StompTarget {
  readonly host: string;
  readonly port: number;
  readonly login: string;
  readonly passcode: string;
  /** Starts the name of every destination of this cluster (`<prefix>.notify`, …), so clusters can share a broker. */
  readonly prefix: string;
}

export function parseStompUrl(url: string): StompTarget {
  const parsed = new URL(url);
  if (parsed.protocol !== 'stomp:') throw new Error(`not a stomp:// URL: ${url}`);
  const prefix = parsed.searchParams.get('prefix') ?? 'epush';
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(prefix) || prefix.length > 100) {
    throw new Error(
      `prefix must be dot-separated words of letters, digits, "_" or "-"; got "${prefix}"`,
    );
  }
  return {
    host: parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: parsed.port === '' ? 61613 : Number(parsed.port),
    login: decodeURIComponent(parsed.username),
    passcode: decodeURIComponent(parsed.password),
    prefix,
  };
}
