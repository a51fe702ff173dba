package io.epush.client;

import java.util.List;

/** What {@code GET /api/groups/{group}/presence} answers (docs/protocol.md, presence). Immutable. */
public final class GroupPresence {
  private final long members;
  private final List<String> listening;

  GroupPresence(long members, List<String> listening) {
    this.members = members;
    this.listening = List.copyOf(listening);
  }

  /**
   * How many push IDs the group has.
   *
   * @return the member count
   */
  public long members() {
    return members;
  }

  /**
   * The members a browser listens on (or listened on within the server's presence grace).
   *
   * @return an unmodifiable list of push IDs
   */
  public List<String> listening() {
    return listening;
  }
}
