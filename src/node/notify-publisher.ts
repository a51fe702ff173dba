import type { Backplane } from '../backplane/backplane.js';
import { EpushError } from '../core/errors.js';
import type { NotificationDraft, NotificationId } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import { notifyFingerprint, type NotifyOptions } from '../core/idempotency.js';
import type { NotificationIdSource } from '../core/notification-id.js';
import type { PushId } from '../core/push-id.js';

export type NotifyTargetRef =
  | { readonly kind: 'group'; readonly group: GroupName }
  | { readonly kind: 'push-id'; readonly pushId: PushId };

/**
 * A node's notify: mints the id, checks a push ID is live, stamps the draft with its
 * idempotency key and fingerprint when it has a key, and publishes it once (a repeat answers
 * the first call's id). `published` is told only of what was really published.
 */
export class NotifyPublisher {
  constructor(
    private readonly backplane: Backplane,
    private readonly ids: NotificationIdSource,
    private readonly published: (target: 'group' | 'push-id') => void,
  ) {}

  async notify(
    target: NotifyTargetRef,
    payloadJson: string,
    options: NotifyOptions = {},
  ): Promise<NotificationId> {
    if (target.kind === 'push-id' && !(await this.backplane.isLive(target.pushId))) {
      throw new EpushError(
        'push_id_not_found',
        `Push ID ${target.pushId} is unknown or expired; nobody can listen on it.`,
      );
    }
    const draft: NotificationDraft = {
      type: 'notification',
      id: options.id ?? this.ids.next(),
      group: target.kind === 'group' ? target.group : null,
      pushId: target.kind === 'push-id' ? target.pushId : null,
      payloadJson,
      publishedAt: Date.now(),
    };
    const key = options.idempotencyKey;
    if (key === undefined) {
      const event = await this.backplane.publish(draft);
      this.published(target.kind);
      return event.id;
    }
    const name = target.kind === 'group' ? target.group : target.pushId;
    const fingerprint = notifyFingerprint(target.kind, name, payloadJson);
    const outcome = await this.backplane.publishOnce({ ...draft, idem: { key, fingerprint } });
    if (outcome.kind === 'repeat') return outcome.id;
    this.published(target.kind);
    return outcome.event.id;
  }
}
