package io.epush.client;

import java.util.List;

/** What {@code GET /api/push-ids/{pushId}} answers (docs/protocol.md, presence). Immutable. */
public final class PushIdPresence {
  private final String pushId;
  private final String state;
  private final String since;
  private final List<String> groups;

  PushIdPresence(String pushId, String state, String since, List<String> groups) {
    this.pushId = pushId;
    this.state = state;
    this.since = since;
    this.groups = List.copyOf(groups);
  }

  /**
   * The push ID.
   *
   * @return the push ID
   */
  public String pushId() {
    return pushId;
  }

  /**
   * {@code listening} (a listener holds it, or held it within the server's presence grace),
   * {@code idle} (live, nobody listening) or {@code expired}.
   *
   * @return the state as the server named it
   */
  public String state() {
    return state;
  }

  /**
   * Whether {@link #state()} is {@code listening}.
   *
   * @return true when a browser listens
   */
  public boolean isListening() {
    return "listening".equals(state);
  }

  /**
   * Since when the push ID is in its state.
   *
   * @return an ISO-8601 instant
   */
  public String since() {
    return since;
  }

  /**
   * The groups the push ID is a member of.
   *
   * @return an unmodifiable list
   */
  public List<String> groups() {
    return groups;
  }
}
