/**
 * The protocol's fixed limits (docs/protocol.md, §3, §4), declared once: the server's routes, the
 * in-process API, the JMS ingress, the flag parsers and the Node SDK all read them from here, so
 * a client-side check and the server's refusal cannot drift apart.
 */

/** Largest serialized payload a notification may carry (docs/protocol.md); the server refuses more. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

/** Most push IDs one create call may mint, or one listen-token call may sign (docs/protocol.md). */
export const MAX_PUSH_IDS_PER_CALL = 1000;

/** Most push IDs one listen may carry (docs/protocol.md). */
export const MAX_PUSH_IDS_PER_LISTEN = 100;

/** Shortest lifetime a listen token may be minted with (`ttlSeconds` of a minting call). */
export const MIN_LISTEN_TOKEN_TTL_SECONDS = 1;

/** Longest lifetime a listen token may be minted with (a year; also --listen-token-ttl's bound). */
export const MAX_LISTEN_TOKEN_TTL_SECONDS = 31_536_000;

/** Shortest `--listen-token-secret` accepted: 256 bits of an HMAC-SHA256 key, as text. */
export const MIN_LISTEN_TOKEN_SECRET_LENGTH = 32;

/** Shortest `--api-key` secret accepted. */
export const MIN_API_KEY_LENGTH = 16;

/** Largest listen request: a listen body over HTTP, or one listen message on a WebSocket. */
export const MAX_LISTEN_BODY_BYTES = 16 * 1024;
