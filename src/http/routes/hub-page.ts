/**
 * The hub page (`GET /epush-hub.html`): the hidden frame through which pages of every origin of
 * a site share one connection (client/src/hub.ts). It carries no inline script: the allowed
 * page origins travel in a data attribute, and a strict CSP lets it run only `epush-hub.js` of
 * its own origin, connect only to its own origin, and be framed only by the allowed origins.
 */

/** A CSP source expression for an origin from `--cors-origins` (nothing that could break out). */
const CSP_ORIGIN = /^https?:\/\/[A-Za-z0-9.-]+(?::\d{1,5})?$/;

export interface HubPage {
  readonly html: string;
  /** `Content-Security-Policy` of the page. */
  readonly csp: string;
}

function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

/**
 * The hub page for these `--cors-origins`: `*` lets any page embed and use it (push IDs are the
 * capability, and the hub only ever hands a page its own push IDs' notifications); a list
 * limits both the frame's embedders (`frame-ancestors`) and the pages the hub answers.
 */
export function hubPage(corsOrigins: readonly string[]): HubPage {
  const any = corsOrigins.includes('*');
  const origins = corsOrigins.filter((origin) => CSP_ORIGIN.test(origin));
  const ancestors = any ? '*' : origins.length > 0 ? origins.join(' ') : "'none'";
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "connect-src 'self'",
    `frame-ancestors ${ancestors}`,
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  const allowed = escapeAttribute(JSON.stringify(any ? '*' : origins));
  const html = [
    '<!doctype html>',
    `<html data-epush-origins="${allowed}">`,
    '<head><meta charset="utf-8"><title>epush hub</title>',
    '<script src="epush-hub.js"></script></head>',
    '<body></body>',
    '</html>',
    '',
  ].join('\n');
  return { html, csp };
}
