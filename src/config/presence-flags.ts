/**
 * The flags of presence and its webhooks (docs/protocol.md, docs/webhooks.md), part of the one
 * flags table (flags.ts spreads them into FLAGS, where --help, env names and the docs read them).
 */
import { FlagValueError, integer, type FlagSpec } from './flag-spec.js';

/** Shortest webhook secret: HMAC keys shorter than this are guessable offline. */
export const MIN_WEBHOOK_SECRET_LENGTH = 32;

export const PRESENCE_FLAGS = {
  presenceGraceSeconds: {
    name: 'presence-grace-seconds',
    arg: 'S',
    help: 'a push ID stays "listening" this long after its last listener let go (a re-poll, a tab takeover, a move to another node)',
    defaultText: '5',
    defaultValue: () => 5,
    parse: integer(1, 3600),
  },
  webhookUrl: {
    name: 'webhook-url',
    arg: 'URL',
    help: 'POST presence changes (push_id.listening, push_id.idle, push_id.expired) to this http(s) URL, signed with --webhook-secret',
    defaultText: 'none',
    defaultValue: () => '',
    parse: (raw) => {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new FlagValueError(`is not a URL (got ${JSON.stringify(raw)})`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') {
        throw new FlagValueError(`must be an http:// or https:// URL (got ${JSON.stringify(raw)})`);
      }
      return url.toString();
    },
  },
  webhookSecret: {
    name: 'webhook-secret',
    arg: 'SECRET',
    help: `the key of the webhooks' HMAC-SHA256 signature, at least ${MIN_WEBHOOK_SECRET_LENGTH} characters; needs --webhook-url`,
    defaultText: 'none',
    defaultValue: () => '',
    parse: (raw) => {
      if (raw.length < MIN_WEBHOOK_SECRET_LENGTH) {
        throw new FlagValueError(`must be at least ${MIN_WEBHOOK_SECRET_LENGTH} characters`);
      }
      return raw;
    },
  },
} as const satisfies Record<string, FlagSpec<unknown>>;
