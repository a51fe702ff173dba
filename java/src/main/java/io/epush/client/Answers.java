package io.epush.client;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Reads the API's answers into the result types, validating every field: wire data is never
 * trusted to have the documented shape. A wrong shape is an {@code unexpected_response}.
 */
final class Answers {
  private Answers() {}

  static EpushException unexpected(String what) {
    return new EpushException("unexpected_response", what, 0, -1, 0, null);
  }

  static Map<?, ?> object(Object body, String call) {
    if (!(body instanceof Map)) throw unexpected(call + " did not answer a JSON object.");
    return (Map<?, ?>) body;
  }

  static String string(Map<?, ?> object, String field, String call) {
    Object value = object.get(field);
    if (!(value instanceof String)) {
      throw unexpected(call + " answered without the string \"" + field + "\".");
    }
    return (String) value;
  }

  static String nullableString(Map<?, ?> object, String field, String call) {
    Object value = object.get(field);
    if (value == null) return null;
    if (!(value instanceof String)) {
      throw unexpected(call + " answered a \"" + field + "\" that is not a string.");
    }
    return (String) value;
  }

  static long count(Map<?, ?> object, String field, String call) {
    Object value = object.get(field);
    if (!(value instanceof Long) || (Long) value < 0) {
      throw unexpected(call + " answered without the count \"" + field + "\".");
    }
    return (Long) value;
  }

  static List<String> strings(Map<?, ?> object, String field, String call) {
    Object value = object.get(field);
    if (!(value instanceof List)) {
      throw unexpected(call + " answered without the list \"" + field + "\".");
    }
    List<String> out = new ArrayList<>();
    for (Object item : (List<?>) value) {
      if (!(item instanceof String) || ((String) item).isEmpty()) {
        throw unexpected(call + " answered a \"" + field + "\" that is not a list of strings.");
      }
      out.add((String) item);
    }
    return out;
  }

  static List<String> pushIds(Map<?, ?> object, String field, String call) {
    List<String> ids = strings(object, field, call);
    for (String id : ids) {
      if (!EpushNames.isPushId(id)) {
        throw unexpected(call + " answered a \"" + field + "\" entry that is not a push ID.");
      }
    }
    return ids;
  }

  static List<ClusterNode> clusterNodes(Object body) {
    String call = "GET /api/cluster";
    Object nodes = object(body, call).get("nodes");
    if (!(nodes instanceof List)) throw unexpected(call + " did not answer {\"nodes\": [...]}.");
    List<ClusterNode> out = new ArrayList<>();
    for (Object item : (List<?>) nodes) {
      Map<?, ?> node = object(item, call);
      out.add(
          new ClusterNode(
              string(node, "id", call),
              count(node, "connections", call),
              string(node, "startedAt", call),
              string(node, "lastSeen", call)));
    }
    return out;
  }

  static PushIdsWithTokens pushIdsWithTokens(Object body) {
    String call = "POST /api/push-ids";
    Map<?, ?> answer = object(body, call);
    List<String> ids = pushIds(answer, "pushIds", call);
    if (!answer.containsKey("listenTokens")) return new PushIdsWithTokens(ids, null);
    List<String> tokens = strings(answer, "listenTokens", call);
    if (tokens.size() != ids.size()) {
      throw unexpected(call + " answered \"listenTokens\" that do not match \"pushIds\".");
    }
    return new PushIdsWithTokens(ids, tokens);
  }

  static ListenTokens listenTokens(Object body, int expected) {
    String call = "POST /api/listen-tokens";
    Map<?, ?> answer = object(body, call);
    List<String> tokens = strings(answer, "listenTokens", call);
    if (tokens.size() != expected) {
      throw unexpected(call + " answered " + tokens.size() + " tokens for " + expected + ".");
    }
    return new ListenTokens(tokens, string(answer, "expiresAt", call));
  }

  static PushIdPresence pushIdPresence(Object body, String call) {
    Map<?, ?> answer = object(body, call);
    return new PushIdPresence(
        string(answer, "pushId", call),
        string(answer, "state", call),
        string(answer, "since", call),
        strings(answer, "groups", call));
  }

  static GroupPresence groupPresence(Object body, String call) {
    Map<?, ?> answer = object(body, call);
    return new GroupPresence(count(answer, "members", call), pushIds(answer, "listening", call));
  }

  static HistoryPage history(Object body, String call) {
    Map<?, ?> answer = object(body, call);
    Object list = answer.get("notifications");
    if (!(list instanceof List)) {
      throw unexpected(call + " did not answer {\"notifications\": [...]}.");
    }
    List<StoredNotification> out = new ArrayList<>();
    for (Object item : (List<?>) list) {
      Map<?, ?> n = object(item, call);
      if (!n.containsKey("payload")) throw unexpected(call + " answered a notification without \"payload\".");
      Object payload = n.get("payload");
      out.add(
          new StoredNotification(
              string(n, "id", call),
              nullableString(n, "pushId", call),
              nullableString(n, "group", call),
              payload == null ? null : Json.write(payload),
              string(n, "publishedAt", call)));
    }
    Object reset = answer.get("reset");
    if (reset != null && !(reset instanceof Boolean)) {
      throw unexpected(call + " answered a \"reset\" that is not a boolean.");
    }
    return new HistoryPage(out, string(answer, "cursor", call), Boolean.TRUE.equals(reset));
  }

  static String notificationId(Object body, String call) {
    String id = string(object(body, call), "id", call);
    if (id.isEmpty()) throw unexpected(call + " answered an empty \"id\".");
    return id;
  }
}
