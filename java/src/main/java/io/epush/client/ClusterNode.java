package io.epush.client;

/** One node of the cluster as {@code GET /api/cluster} reports it. Immutable. */
public final class ClusterNode {
  private final String id;
  private final long connections;
  private final String startedAt;
  private final String lastSeen;

  ClusterNode(String id, long connections, String startedAt, String lastSeen) {
    this.id = id;
    this.connections = connections;
    this.startedAt = startedAt;
    this.lastSeen = lastSeen;
  }

  /**
   * The node's id ({@code --node-id}).
   *
   * @return the id
   */
  public String id() {
    return id;
  }

  /**
   * Listener connections the node holds (long-polls, SSE streams, WebSockets).
   *
   * @return the count
   */
  public long connections() {
    return connections;
  }

  /**
   * When the node started.
   *
   * @return an ISO-8601 instant
   */
  public String startedAt() {
    return startedAt;
  }

  /**
   * The node's last heartbeat on the backplane.
   *
   * @return an ISO-8601 instant
   */
  public String lastSeen() {
    return lastSeen;
  }

  @Override
  public String toString() {
    return "ClusterNode[" + id + ", connections=" + connections + "]";
  }
}
