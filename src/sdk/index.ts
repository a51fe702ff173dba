/**
 * `epush/sdk`: the Node client of the application API (SPEC §3) for applications that talk to
 * a remote epush cluster. See docs/sdk.md.
 */
export {
  EpushClient,
  EpushClientError,
  MAX_PAYLOAD_BYTES,
  MAX_PUSH_IDS_PER_CALL,
  type EpushClientErrorCode,
  type EpushClientLocalCode,
  type EpushClientOptions,
  type EpushClusterNode,
  type EpushRetryOptions,
  type GroupName,
  type NotificationId,
  type NotifyItem,
  type NotifyManyOptions,
  type NotifyManyResult,
  type NotifyResult,
  type PushId,
} from './epush-client.js';
