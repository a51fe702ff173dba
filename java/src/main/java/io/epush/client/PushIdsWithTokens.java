package io.epush.client;

import java.util.List;

/** What {@link EpushClient#createPushIdsWithTokens(int)} returns. Immutable. */
public final class PushIdsWithTokens {
  private final List<String> pushIds;
  private final List<String> listenTokens;

  PushIdsWithTokens(List<String> pushIds, List<String> listenTokens) {
    this.pushIds = List.copyOf(pushIds);
    this.listenTokens = listenTokens == null ? null : List.copyOf(listenTokens);
  }

  /**
   * The fresh push IDs.
   *
   * @return an unmodifiable list
   */
  public List<String> pushIds() {
    return pushIds;
  }

  /**
   * The listen token of each push ID, same order ({@code listenTokens().get(i)} belongs to
   * {@code pushIds().get(i)}).
   *
   * @return an unmodifiable list, or null when the server mints none (it has no {@code
   *     --listen-token-secret})
   */
  public List<String> listenTokens() {
    return listenTokens;
  }
}
