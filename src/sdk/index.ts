/**
 * `epush/sdk`: the Node client of the application API (docs/protocol.md) for applications that talk to
 * a remote epush cluster. See docs/sdk.md.
 */
export {
  EpushApiClient,
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- still exported for existing users
  EpushClient,
  EpushClientError,
  MAX_PAYLOAD_BYTES,
  MAX_LISTEN_TOKEN_TTL_SECONDS,
  MAX_PUSH_IDS_PER_CALL,
  type EpushClientErrorCode,
  type EpushClientLocalCode,
  type EpushClientOptions,
  // eslint-disable-next-line @typescript-eslint/no-deprecated -- still exported for existing users
  type EpushClusterNode,
  type EpushRetryOptions,
  type GroupName,
  type HistoryNotification,
  type HistoryOptions,
  type HistoryResult,
  type ListenTokensResult,
  type NodeInfo,
  type NotificationId,
  type NotifyItem,
  type NotifyManyOptions,
  type NotifyManyResult,
  type NotifyOptions,
  type NotifyResult,
  type PushId,
  type PushIdsWithTokens,
} from './epush-client.js';
export type { GroupPresence, PushIdPresence } from './presence-answers.js';
export {
  verifyWebhook,
  WebhookVerificationError,
  type VerifyWebhookOptions,
  type WebhookBatch,
  type WebhookEvent,
} from './webhook-receiver.js';
