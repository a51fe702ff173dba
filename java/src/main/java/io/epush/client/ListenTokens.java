package io.epush.client;

import java.util.List;

/** What {@link EpushClient#listenTokens(List, int)} returns. Immutable. */
public final class ListenTokens {
  private final List<String> listenTokens;
  private final String expiresAt;

  ListenTokens(List<String> listenTokens, String expiresAt) {
    this.listenTokens = List.copyOf(listenTokens);
    this.expiresAt = expiresAt;
  }

  /**
   * One token per push ID asked for, in the same order.
   *
   * @return an unmodifiable list
   */
  public List<String> listenTokens() {
    return listenTokens;
  }

  /**
   * When every token of the call expires.
   *
   * @return an ISO-8601 instant
   */
  public String expiresAt() {
    return expiresAt;
  }
}
