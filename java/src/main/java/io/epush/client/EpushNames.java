package io.epush.client;

import java.util.regex.Pattern;

/**
 * The server's rules for names, checked locally so that a bad argument is refused before anything
 * is sent (docs/protocol.md, §7). Stateless and thread-safe.
 */
public final class EpushNames {
  private static final Pattern GROUP = Pattern.compile("[A-Za-z0-9._:~-]{1,200}");
  private static final Pattern PUSH_ID = Pattern.compile("[A-Za-z0-9_-]{16,64}");
  private static final Pattern IDEMPOTENCY_KEY = Pattern.compile("[A-Za-z0-9._:~-]{1,200}");

  /** Largest payload a notification may carry, in bytes of compact JSON (docs/protocol.md). */
  public static final int MAX_PAYLOAD_BYTES = 64 * 1024;

  private EpushNames() {}

  /**
   * Whether {@code name} is a group name: 1-200 characters of {@code [A-Za-z0-9._:~-]}.
   *
   * @param name the candidate (null is not a name)
   * @return true when the server accepts it
   */
  public static boolean isGroupName(String name) {
    return name != null && GROUP.matcher(name).matches();
  }

  /**
   * Whether {@code id} is shaped as a push ID: 16-64 characters of {@code [A-Za-z0-9_-]}.
   *
   * @param id the candidate (null is not a push ID)
   * @return true when the server accepts its shape
   */
  public static boolean isPushId(String id) {
    return id != null && PUSH_ID.matcher(id).matches();
  }

  /**
   * Whether {@code key} is an idempotency key: 1-200 characters of {@code [A-Za-z0-9._:~-]}.
   *
   * @param key the candidate
   * @return true when the server accepts it
   */
  public static boolean isIdempotencyKey(String key) {
    return key != null && IDEMPOTENCY_KEY.matcher(key).matches();
  }

  static String group(String name) {
    if (!isGroupName(name)) {
      throw EpushException.invalidArgument(
          "Group names are 1-200 characters of letters, digits and . _ : ~ -");
    }
    return name;
  }

  static String pushId(String id) {
    if (!isPushId(id)) {
      throw EpushException.invalidArgument(
          "Push IDs are 16-64 characters of letters, digits, _ and -.");
    }
    return id;
  }

  static String idempotencyKey(String key) {
    if (!isIdempotencyKey(key)) {
      throw EpushException.invalidArgument(
          "Idempotency keys are 1-200 characters of letters, digits and . _ : ~ -");
    }
    return key;
  }

  /**
   * Checks a payload given as JSON text and returns it compact, as the server will store it.
   *
   * @param payloadJson the payload as JSON text; null or blank means no payload
   * @return the compact JSON, or null for no payload
   * @throws EpushException {@code invalid_argument} when it is not JSON or is larger than {@link
   *     #MAX_PAYLOAD_BYTES} once compact
   */
  public static String payload(String payloadJson) {
    if (payloadJson == null || payloadJson.trim().isEmpty()) return null;
    String compact;
    try {
      compact = Json.compact(payloadJson);
    } catch (IllegalArgumentException notJson) {
      throw EpushException.invalidArgument("The payload is not JSON text: " + notJson.getMessage());
    }
    if (compact.getBytes(java.nio.charset.StandardCharsets.UTF_8).length > MAX_PAYLOAD_BYTES) {
      throw EpushException.invalidArgument(
          "The payload is larger than " + MAX_PAYLOAD_BYTES + " bytes once serialized.");
    }
    return compact;
  }
}
