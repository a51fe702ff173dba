/**
 * The XML answers of ICEpush's `listen.icepush` (the protocol of ICEfaces 2–4 pages). The page's
 * client dispatches an answer on its root element's name; every body here is one element.
 */

/** Escapes text for an XML attribute value or element content. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => XML_ENTITIES[char] ?? char);
}

const XML_ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
};

/** One notified push ID and the payload it was notified with (null: none). */
export interface IcepushNotified {
  readonly pushId: string;
  readonly payload: string | null;
}

/**
 * The notified push IDs. Without any payload, the classic `<notified-pushids>a b</notified-pushids>`
 * every ICEpush client reads; with payloads, `<notifications>` with one `<notification>` per
 * distinct payload (push IDs notified with the same payload share one element). A push ID is
 * named once per payload: the original coalesces repeated notifications the same way.
 */
export function notifiedXml(notified: readonly IcepushNotified[]): string {
  if (notified.every((entry) => entry.payload === null)) {
    const ids = [...new Set(notified.map((entry) => entry.pushId))];
    return `<notified-pushids>${escapeXml(ids.join(' '))}</notified-pushids>`;
  }
  const byPayload = new Map<string | null, Set<string>>();
  for (const { pushId, payload } of notified) {
    let ids = byPayload.get(payload);
    if (ids === undefined) byPayload.set(payload, (ids = new Set()));
    ids.add(pushId);
  }
  let xml = '<notifications>';
  for (const [payload, ids] of byPayload) {
    const attribute = `push-ids="${escapeXml([...ids].join(' '))}"`;
    xml +=
      payload === null
        ? `<notification ${attribute}/>`
        : `<notification ${attribute}>${escapeXml(payload)}</notification>`;
  }
  return `${xml}</notifications>`;
}

export const NOOP_XML = '<noop/>';

export function backOffXml(delayMs: number): string {
  return `<back-off delay="${Math.max(0, Math.round(delayMs))}"/>`;
}

/** The page's new browser ID (the client stores it in the `ice.push.browser` cookie). */
export function browserXml(browserId: string): string {
  return `<browser id="${escapeXml(browserId)}"/>`;
}

export function configurationXml(heartbeatTimeoutMs: number): string {
  return `<configuration heartbeatTimeout="${heartbeatTimeoutMs}"/>`;
}

/** Sent with HTTP 503: the client retries after its serverErrorRetryTimeouts. */
export function serverErrorXml(message: string): string {
  return `<server-error message="${escapeXml(message)}"/>`;
}
