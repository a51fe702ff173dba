package io.epush.client;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Drives the client against a real epush node (test/integration/java-client-live.test.ts runs
 * it): every call of docs/protocol.md and the listen tokens, through a node list whose first entry refuses
 * connections, and prints what it got as one JSON object for the test to check.
 *
 * <p>Arguments: the refusing URL, the node's URL, the API key, and a push ID the test listens on.
 */
public final class LiveServerCheck {
  private LiveServerCheck() {}

  /**
   * Runs the calls and prints the results.
   *
   * @param args refusing URL, node URL, API key, listened push ID
   */
  public static void main(String[] args) {
    String refusing = args[0];
    String url = args[1];
    String key = args[2];
    String listened = args[3];
    EpushClient push = EpushClient.builder().urls(refusing, url).apiKey(key).build();
    Map<String, Object> out = new LinkedHashMap<>();

    PushIdsWithTokens minted = push.createPushIdsWithTokens(2);
    out.put("pushIds", minted.pushIds());
    out.put("listenTokens", minted.listenTokens());
    String first = minted.pushIds().get(0);
    push.addMember("java.live", first);
    out.put("membersAfterAdd", push.members("java.live"));
    push.removeMember("java.live", first);
    out.put("membersAfterRemove", push.members("java.live"));
    ListenTokens fresh = push.listenTokens(List.of(first), 60);
    out.put("freshToken", fresh.listenTokens().get(0));
    out.put("freshExpiresAt", fresh.expiresAt());
    out.put(
        "notifyPushId",
        push.notifyPushId(listened, "{\"from\":\"java\",\"text\":\"h\u00e9llo <b>\",\"n\":18446744073709551616}"));
    out.put("notifyEmptyGroup", push.notifyGroup("java.live.empty", null));
    // Idempotent notify and history (docs/protocol.md): a repeat answers the first id, another
    // body under the same key is a conflict, and the history holds the notification once.
    String notifyKey = "java-live:" + EpushClient.newIdempotencyKey();
    String once = push.notifyGroup("java.live.history", "{\"n\":1}", notifyKey);
    out.put("repeatSameId", once.equals(push.notifyGroup("java.live.history", "{\"n\":1}", notifyKey)));
    try {
      push.notifyGroup("java.live.history", "{\"n\":2}", notifyKey);
      out.put("conflict", "no error");
    } catch (EpushException expected) {
      out.put("conflict", expected.code() + " " + expected.status());
    }
    HistoryPage page = push.groupHistory("java.live.history", null, 0);
    List<String> historyIds = new java.util.ArrayList<>();
    for (StoredNotification n : page.notifications()) historyIds.add(n.id() + " " + n.payloadJson());
    out.put("groupHistory", historyIds);
    out.put("historyFirstId", once);
    out.put("historyReset", page.reset());
    HistoryPage more = push.groupHistory("java.live.history", page.cursor(), 10);
    out.put("historyAfterCursor", more.notifications().size());
    Map<String, Object> nodes = new LinkedHashMap<>();
    for (ClusterNode node : push.cluster()) nodes.put(node.id(), node.connections());
    out.put("cluster", nodes);
    try {
      push.notifyPushId("AAAAAAAAAAAAAAAAAAAAAA", null);
      out.put("unknownPushId", "no error");
    } catch (EpushException expected) {
      out.put("unknownPushId", expected.code() + " " + expected.status() + " " + expected.attempts());
    }
    try {
      EpushClient.builder().url(url).apiKey("wrong-key").build().members("java.live");
      out.put("wrongKey", "no error");
    } catch (EpushException expected) {
      out.put("wrongKey", expected.code() + " " + expected.status());
    }
    System.out.println(Json.write(out));
  }
}
