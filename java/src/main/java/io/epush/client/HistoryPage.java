package io.epush.client;

import java.util.List;

/** One read of a history (docs/protocol.md): notifications oldest first, and where to continue. */
public final class HistoryPage {
  private final List<StoredNotification> notifications;
  private final String cursor;
  private final boolean reset;

  HistoryPage(List<StoredNotification> notifications, String cursor, boolean reset) {
    this.notifications = List.copyOf(notifications);
    this.cursor = cursor;
    this.reset = reset;
  }

  /**
   * The notifications, oldest first.
   *
   * @return an unmodifiable list
   */
  public List<StoredNotification> notifications() {
    return notifications;
  }

  /**
   * The cursor to pass as {@code since} to continue the read.
   *
   * @return the cursor
   */
  public String cursor() {
    return cursor;
  }

  /**
   * Whether {@code since} was older than the server's retention: some notifications were missed.
   *
   * @return true when the server answered {@code "reset": true}
   */
  public boolean reset() {
    return reset;
  }
}
