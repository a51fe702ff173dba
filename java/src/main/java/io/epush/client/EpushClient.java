package io.epush.client;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * A client of one epush cluster's application API (docs/protocol.md), for Java 11 and later, with
 * no dependency beyond the JDK.
 *
 * <pre>{@code
 * EpushClient push = EpushClient.builder().url("http://127.0.0.1:8080").apiKey(key).build();
 * List<String> ids = push.createPushIds(2);
 * push.addMember("chat", ids.get(0));
 * String id = push.notifyGroup("chat", "{\"room\":\"lobby\"}");
 * }</pre>
 *
 * <p>Immutable and thread-safe: build one per cluster and share it. Every method checks its
 * arguments with the server's rules first and throws {@link EpushException} {@code
 * invalid_argument} before sending anything; every failure is an {@link EpushException}.
 *
 * <p>Retries (java/README.md): 503 and 429 answers and connections that never opened are retried
 * for every call, on the next node; a broken connection or a timeout after sending is retried for
 * every call that is safe to repeat, which includes notify: each notify carries an {@code
 * Idempotency-Key}, the same on every retry, so the server publishes it once (docs/protocol.md).
 */
public final class EpushClient {
  /** Most push IDs one call may mint or sign (docs/protocol.md). */
  public static final int MAX_PUSH_IDS_PER_CALL = 1000;
  /** Longest lifetime a listen token may be minted with. */
  public static final int MAX_LISTEN_TOKEN_TTL_SECONDS = 31_536_000;
  /** Most notifications one history read returns. */
  public static final int MAX_HISTORY_LIMIT = 1000;

  private final CallRunner runner;
  private final boolean retryUnansweredNotify;

  EpushClient(CallRunner runner, boolean retryUnansweredNotify) {
    this.runner = runner;
    this.retryUnansweredNotify = retryUnansweredNotify;
  }

  /**
   * Starts configuring a client.
   *
   * @return a new builder
   */
  public static EpushClientBuilder builder() {
    return new EpushClientBuilder();
  }

  /**
   * {@code POST /api/push-ids}: mints one fresh push ID.
   *
   * @return the push ID
   */
  public String createPushId() {
    return createPushIds(1).get(0);
  }

  /**
   * {@code POST /api/push-ids}: mints fresh push IDs. Retried on any failure: a lost answer only
   * wastes push IDs nobody holds, which expire after the server's {@code push-id-ttl}.
   *
   * @param count 1 to 1000
   * @return the push IDs, an unmodifiable list
   */
  public List<String> createPushIds(int count) {
    return createPushIdsWithTokens(count).pushIds();
  }

  /**
   * {@code POST /api/push-ids}, with the listen tokens the server mints alongside when it has a
   * {@code --listen-token-secret}.
   *
   * @param count 1 to 1000
   * @return the push IDs and their tokens (null tokens when the server mints none)
   */
  public PushIdsWithTokens createPushIdsWithTokens(int count) {
    checkCount(count, "count");
    Object body = runner.run(post("/api/push-ids", "{\"count\":" + count + "}", true));
    return Answers.pushIdsWithTokens(body);
  }

  /**
   * {@code POST /api/listen-tokens} with the server's default lifetime ({@code
   * --listen-token-ttl}).
   *
   * @param pushIds 1 to 1000 push IDs
   * @return one token per push ID, and their expiry
   * @throws EpushException {@code not_found} (404) when the server has no listen-token secret
   */
  public ListenTokens listenTokens(List<String> pushIds) {
    return listenTokens(pushIds, 0);
  }

  /**
   * {@code POST /api/listen-tokens}: fresh tokens for pages that outlive theirs. Retried on any
   * failure: minting changes nothing on the server.
   *
   * @param pushIds 1 to 1000 push IDs
   * @param ttlSeconds lifetime, 1 to {@link #MAX_LISTEN_TOKEN_TTL_SECONDS}; 0 for the server's
   *     default
   * @return one token per push ID, and their expiry
   * @throws EpushException {@code not_found} (404) when the server has no listen-token secret
   */
  public ListenTokens listenTokens(List<String> pushIds, int ttlSeconds) {
    if (pushIds == null) throw EpushException.invalidArgument("pushIds is null.");
    checkCount(pushIds.size(), "pushIds.size()");
    for (String id : pushIds) EpushNames.pushId(id);
    if (ttlSeconds < 0 || ttlSeconds > MAX_LISTEN_TOKEN_TTL_SECONDS) {
      throw EpushException.invalidArgument(
          "ttlSeconds must be 0 (server default) or 1 to " + MAX_LISTEN_TOKEN_TTL_SECONDS + ".");
    }
    Map<String, Object> request = new LinkedHashMap<>();
    request.put("pushIds", pushIds);
    if (ttlSeconds > 0) request.put("ttlSeconds", ttlSeconds);
    Object body = runner.run(post("/api/listen-tokens", Json.write(request), true));
    return Answers.listenTokens(body, pushIds.size());
  }

  /**
   * {@code PUT /api/groups/{group}/members/{pushId}} (idempotent).
   *
   * @param group the group
   * @param pushId the push ID to add
   */
  public void addMember(String group, String pushId) {
    runner.run(call("PUT", memberPath(group, pushId), null, true));
  }

  /**
   * {@code DELETE /api/groups/{group}/members/{pushId}} (idempotent).
   *
   * @param group the group
   * @param pushId the push ID to remove
   */
  public void removeMember(String group, String pushId) {
    runner.run(call("DELETE", memberPath(group, pushId), null, true));
  }

  /**
   * {@code GET /api/groups/{group}/members}.
   *
   * @param group the group
   * @return its push IDs, an unmodifiable list
   */
  public List<String> members(String group) {
    String path = "/api/groups/" + EpushNames.group(group) + "/members";
    Object body = runner.run(call("GET", path, null, true));
    return List.copyOf(Answers.pushIds(Answers.object(body, "GET " + path), "members", path));
  }

  /**
   * {@code POST /api/groups/{group}/notify} with a fresh idempotency key.
   *
   * @param group the group
   * @param payloadJson the payload as JSON text ({@code "{\"a\":1}"}, {@code "\"text\""}, {@code
   *     "42"}), or null for none; at most 64 KiB once compact
   * @return the notification's id
   */
  public String notifyGroup(String group, String payloadJson) {
    return notifyGroup(group, payloadJson, newIdempotencyKey());
  }

  /**
   * {@code POST /api/groups/{group}/notify} with the caller's idempotency key: a repeat with the
   * same key within the server's retention answers the first id and publishes nothing (on any
   * node); the same key with another target or payload fails with {@code idempotency_conflict}.
   *
   * @param group the group
   * @param payloadJson the payload as JSON text, or null for none
   * @param idempotencyKey 1-200 characters of {@code [A-Za-z0-9._:~-]}
   * @return the notification's id
   */
  public String notifyGroup(String group, String payloadJson, String idempotencyKey) {
    String path = "/api/groups/" + EpushNames.group(group) + "/notify";
    return notify(path, payloadJson, idempotencyKey);
  }

  /**
   * {@code POST /api/push-ids/{pushId}/notify} with a fresh idempotency key.
   *
   * @param pushId the push ID
   * @param payloadJson the payload as JSON text, or null for none
   * @return the notification's id
   */
  public String notifyPushId(String pushId, String payloadJson) {
    return notifyPushId(pushId, payloadJson, newIdempotencyKey());
  }

  /**
   * {@code POST /api/push-ids/{pushId}/notify} with the caller's idempotency key (see {@link
   * #notifyGroup(String, String, String)}).
   *
   * @param pushId the push ID
   * @param payloadJson the payload as JSON text, or null for none
   * @param idempotencyKey 1-200 characters of {@code [A-Za-z0-9._:~-]}
   * @return the notification's id
   */
  public String notifyPushId(String pushId, String payloadJson, String idempotencyKey) {
    String path = "/api/push-ids/" + EpushNames.pushId(pushId) + "/notify";
    return notify(path, payloadJson, idempotencyKey);
  }

  /**
   * {@code GET /api/push-ids/{pushId}}: whether a browser listens on the push ID.
   *
   * @param pushId the push ID
   * @return its state, since when, and its groups
   * @throws EpushException {@code push_id_not_found} (404) for a push ID never minted
   */
  public PushIdPresence pushIdPresence(String pushId) {
    String path = "/api/push-ids/" + EpushNames.pushId(pushId);
    return Answers.pushIdPresence(runner.run(call("GET", path, null, true)), "GET " + path);
  }

  /**
   * {@code GET /api/groups/{group}/presence}: which members a browser listens on.
   *
   * @param group the group
   * @return the member count and the listening push IDs
   */
  public GroupPresence groupPresence(String group) {
    String path = "/api/groups/" + EpushNames.group(group) + "/presence";
    return Answers.groupPresence(runner.run(call("GET", path, null, true)), "GET " + path);
  }

  /**
   * {@code GET /api/groups/{group}/notifications}: the group's recent notifications, oldest
   * first, within the server's retention.
   *
   * @param group the group
   * @param since a cursor from an earlier page, or null for the most recent {@code limit}
   * @param limit 1 to 1000, or 0 for the server's default (100)
   * @return the page
   */
  public HistoryPage groupHistory(String group, String since, int limit) {
    String path = "/api/groups/" + EpushNames.group(group) + "/notifications";
    return history(path, since, limit);
  }

  /**
   * {@code GET /api/push-ids/{pushId}/notifications}: what was sent to the push ID (directly or
   * through its groups), oldest first, within the server's retention.
   *
   * @param pushId the push ID
   * @param since a cursor from an earlier page, or null for the most recent {@code limit}
   * @param limit 1 to 1000, or 0 for the server's default (100)
   * @return the page
   */
  public HistoryPage pushIdHistory(String pushId, String since, int limit) {
    String path = "/api/push-ids/" + EpushNames.pushId(pushId) + "/notifications";
    return history(path, since, limit);
  }

  /**
   * {@code GET /api/cluster}: the nodes of the cluster.
   *
   * @return the nodes, an unmodifiable list
   */
  public List<ClusterNode> cluster() {
    return List.copyOf(Answers.clusterNodes(runner.run(call("GET", "/api/cluster", null, true))));
  }

  /**
   * A fresh idempotency key, as {@link #notifyGroup(String, String)} makes for each call: keep it
   * with a message to be sent later (an outbox) so that a re-send after a crash is a repeat.
   *
   * @return a random key (a UUID)
   */
  public static String newIdempotencyKey() {
    return UUID.randomUUID().toString();
  }

  private String notify(String path, String payloadJson, String idempotencyKey) {
    EpushNames.idempotencyKey(idempotencyKey);
    String payload = EpushNames.payload(payloadJson);
    String body = payload == null ? null : "{\"payload\":" + payload + "}";
    CallRunner.Call call =
        new CallRunner.Call(
            "POST",
            path,
            body,
            retryUnansweredNotify,
            Collections.singletonMap("Idempotency-Key", idempotencyKey));
    return Answers.notificationId(runner.run(call), "POST " + path);
  }

  private HistoryPage history(String path, String since, int limit) {
    if (limit < 0 || limit > MAX_HISTORY_LIMIT) {
      throw EpushException.invalidArgument(
          "limit must be 0 (server default) or 1 to " + MAX_HISTORY_LIMIT + ".");
    }
    if (since != null && since.isEmpty()) throw EpushException.invalidArgument("since is empty.");
    StringBuilder query = new StringBuilder();
    if (since != null) query.append("since=").append(URLEncoder.encode(since, StandardCharsets.UTF_8));
    if (limit > 0) query.append(query.length() == 0 ? "" : "&").append("limit=").append(limit);
    String full = query.length() == 0 ? path : path + "?" + query;
    return Answers.history(runner.run(call("GET", full, null, true)), "GET " + path);
  }

  private static void checkCount(int count, String what) {
    if (count < 1 || count > MAX_PUSH_IDS_PER_CALL) {
      throw EpushException.invalidArgument(
          what + " must be from 1 to " + MAX_PUSH_IDS_PER_CALL + " (got " + count + ").");
    }
  }

  private static String memberPath(String group, String pushId) {
    return "/api/groups/" + EpushNames.group(group) + "/members/" + EpushNames.pushId(pushId);
  }

  private static CallRunner.Call post(String path, String body, boolean repeatable) {
    return call("POST", path, body, repeatable);
  }

  private static CallRunner.Call call(String method, String path, String body, boolean repeatable) {
    return new CallRunner.Call(method, path, body, repeatable, Collections.emptyMap());
  }
}
