import {
  DEFAULT_WEBHOOK_TOLERANCE_SECONDS,
  webhookSignatureValid,
} from '../core/webhook-signature.js';
import { isPushId, type PushId } from '../core/push-id.js';
import { isRecord } from './call-arguments.js';

/** One event of a webhook batch (docs/webhooks.md). */
export interface WebhookEvent {
  readonly type: 'push_id.listening' | 'push_id.idle' | 'push_id.expired';
  readonly pushId: PushId;
  /** When the state began (ISO-8601). */
  readonly at: string;
  /** Unique per state change: dedupe by it across a sender's failover. */
  readonly id: string;
}

export interface WebhookBatch {
  /** The `Epush-Delivery` header: the same on every retry of this batch. */
  readonly delivery: string | null;
  readonly events: readonly WebhookEvent[];
}

export interface VerifyWebhookOptions {
  /** The `--webhook-secret` of the cluster. */
  readonly secret: string;
  /** Refuse signatures older (or newer) than this; default 300 s. */
  readonly toleranceSeconds?: number;
  /** Clock, for tests (ms since the epoch). */
  readonly now?: number;
}

/** Thrown by {@link verifyWebhook}: answer the request 400 and do not act on it. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

const TYPES: readonly unknown[] = ['push_id.listening', 'push_id.idle', 'push_id.expired'];

/**
 * Verifies a webhook request and returns its batch. `body` must be the RAW body (the bytes
 * received, before any JSON parsing); `headers` the request's headers (Node's lower-case names).
 * Throws WebhookVerificationError for a missing, wrong or too old signature, or a body that is
 * not a batch.
 */
export function verifyWebhook(
  body: string | Buffer,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  options: VerifyWebhookOptions,
): WebhookBatch {
  const signature = single(headers['epush-signature']);
  const nowSeconds = Math.floor((options.now ?? Date.now()) / 1000);
  const tolerance = options.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  if (!webhookSignatureValid(options.secret, body, signature, nowSeconds, tolerance)) {
    throw new WebhookVerificationError(
      'The Epush-Signature header is missing, does not match the body, or is too old.',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === 'string' ? body : body.toString('utf8'));
  } catch {
    throw new WebhookVerificationError('The body is not JSON.');
  }
  const events = isRecord(parsed) ? parsed.events : undefined;
  if (!Array.isArray(events) || !events.every(isEvent)) {
    throw new WebhookVerificationError('The body is not {"events": [...]}.');
  }
  return { delivery: single(headers['epush-delivery']) ?? null, events };
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function isEvent(value: unknown): value is WebhookEvent {
  return (
    isRecord(value) &&
    TYPES.includes(value.type) &&
    isPushId(value.pushId) &&
    typeof value.at === 'string' &&
    typeof value.id === 'string'
  );
}
