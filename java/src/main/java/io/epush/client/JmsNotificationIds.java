package io.epush.client;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Base64;

/**
 * The notification id the JMS ingress gives a message (docs/jms.md): {@code "jms-"} + the first 22
 * characters of base64url(SHA-256(UTF-8 bytes of the JMS message ID)). The JMS message ID is the
 * message's idempotency key: a redelivered message keeps it, gets the same id, and is notified
 * once. Stateless and thread-safe.
 */
public final class JmsNotificationIds {
  private JmsNotificationIds() {}

  /**
   * The epush notification id of a message sent to the notify queue.
   *
   * @param jmsMessageId the message's {@code JMSMessageID}, as the provider set it on send
   * @return the id the browser will see
   */
  public static String forMessageId(String jmsMessageId) {
    if (jmsMessageId == null || jmsMessageId.isEmpty()) {
      throw EpushException.invalidArgument("The JMS message ID is empty.");
    }
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-256")
              .digest(jmsMessageId.getBytes(StandardCharsets.UTF_8));
      return "jms-" + Base64.getUrlEncoder().withoutPadding().encodeToString(digest).substring(0, 22);
    } catch (NoSuchAlgorithmException impossible) {
      // Every Java platform must provide SHA-256 (java.security.MessageDigest's contract).
      throw new IllegalStateException(impossible);
    }
  }
}
