import { createHmac, timingSafeEqual } from 'node:crypto';

/** How old a signature's timestamp may be before a receiver refuses it (replay window). */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

/** `hex HMAC-SHA256(secret, "<t>.<body>")`: what v1 carries. */
function v1(secret: string, t: number, body: string | Buffer): string {
  return createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
}

/** The `Epush-Signature` header of a body sent at unix second `t`. */
export function signWebhook(secret: string, body: string | Buffer, t: number): string {
  return `t=${t},v1=${v1(secret, t, body)}`;
}

/**
 * Checks an `Epush-Signature` header against the raw body: a `v1` that matches (compared in
 * constant time) and a timestamp within `toleranceSeconds` of `nowSeconds` (an old, replayed
 * request is refused). Several `v1` values are accepted (any one matching suffices).
 */
export function webhookSignatureValid(
  secret: string,
  body: string | Buffer,
  header: string | undefined,
  nowSeconds: number,
  toleranceSeconds = DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
): boolean {
  if (header === undefined || header.length > 1024) return false;
  let t: number | null = null;
  const candidates: string[] = [];
  for (const part of header.split(',')) {
    const [key, value] = part.trim().split('=', 2);
    if (key === 't' && value !== undefined && /^\d{1,12}$/.test(value)) t = Number(value);
    else if (key === 'v1' && value !== undefined && /^[0-9a-f]{64}$/.test(value)) {
      candidates.push(value);
    }
  }
  if (t === null || candidates.length === 0) return false;
  if (Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(v1(secret, t, body), 'hex');
  let valid = false;
  for (const candidate of candidates) {
    // Every candidate is compared in full: the time taken says nothing about which matched.
    if (timingSafeEqual(expected, Buffer.from(candidate, 'hex'))) valid = true;
  }
  return valid;
}
