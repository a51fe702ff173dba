package io.epush.client;

/** One notification of a history page (docs/protocol.md, history). Immutable. */
public final class StoredNotification {
  private final String id;
  private final String pushId;
  private final String group;
  private final String payloadJson;
  private final String publishedAt;

  StoredNotification(
      String id, String pushId, String group, String payloadJson, String publishedAt) {
    this.id = id;
    this.pushId = pushId;
    this.group = group;
    this.payloadJson = payloadJson;
    this.publishedAt = publishedAt;
  }

  /**
   * The notification's cluster-unique id.
   *
   * @return the id
   */
  public String id() {
    return id;
  }

  /**
   * The push ID it was addressed to.
   *
   * @return the push ID, or null in a group's history for a group notification
   */
  public String pushId() {
    return pushId;
  }

  /**
   * The group it was sent to.
   *
   * @return the group, or null for a direct notification
   */
  public String group() {
    return group;
  }

  /**
   * The payload as compact JSON text.
   *
   * @return the JSON text, or null when none was sent
   */
  public String payloadJson() {
    return payloadJson;
  }

  /**
   * When it was published.
   *
   * @return an ISO-8601 instant
   */
  public String publishedAt() {
    return publishedAt;
  }
}
