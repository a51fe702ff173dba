package io.epush.client.jms.jakarta;

import io.epush.client.EpushException;
import io.epush.client.EpushNames;
import io.epush.client.JmsNotificationIds;
import jakarta.jms.Connection;
import jakarta.jms.ConnectionFactory;
import jakarta.jms.DeliveryMode;
import jakarta.jms.JMSException;
import jakarta.jms.MessageProducer;
import jakarta.jms.Session;
import jakarta.jms.TextMessage;

/**
 * Notifies epush through a JMS broker, on the {@code jakarta.jms} API
 * (Jakarta Messaging 3; Artemis, TomEE 9+, WildFly 27+, GlassFish 7+, Open Liberty).
 * It sends a persistent {@code TextMessage} to
 * the notify queue that the epush cluster's JMS ingress consumes (docs/jms.md), with the payload
 * as its text and the target in the {@code epushGroup} or {@code epushPushId} property.
 *
 * <p>The idempotency key is the JMS message ID: the ingress derives the notification id from it,
 * so a message the broker redelivers (a node died before acknowledging) is notified once. A
 * {@code send} that throws is not retried here (the broker may have stored it, and a new message
 * would get a new ID); with ActiveMQ, a {@code failover:} broker URL makes the provider re-send
 * the same message, under the same ID, by itself.
 *
 * <p>Thread-safe: one JMS connection, shared, opened on first use and re-opened after a failure;
 * one session per send (a JMS session is single-threaded). Close it with the application.
 */
public final class EpushJmsNotifier implements AutoCloseable {
  /** The ingress's queue with the default backplane prefix {@code epush}. */
  public static final String DEFAULT_QUEUE = "epush.notify";

  private final ConnectionFactory factory;
  private final String queueName;
  private final Object lock = new Object();
  private Connection connection;
  private boolean closed;

  /**
   * A notifier for the queue {@value #DEFAULT_QUEUE}.
   *
   * @param factory the broker's connection factory (from JNDI, or constructed)
   */
  public EpushJmsNotifier(ConnectionFactory factory) {
    this(factory, DEFAULT_QUEUE);
  }

  /**
   * A notifier for the queue {@code <prefix>.notify} of a backplane URL with {@code ?prefix=}.
   *
   * @param factory the broker's connection factory
   * @param queueName the JMS queue name, e.g. {@code shop.prod.notify}
   */
  public EpushJmsNotifier(ConnectionFactory factory, String queueName) {
    if (factory == null) throw EpushException.invalidArgument("The connection factory is null.");
    if (queueName == null || queueName.isEmpty()) {
      throw EpushException.invalidArgument("The queue name is empty.");
    }
    this.factory = factory;
    this.queueName = queueName;
  }

  /**
   * Notifies a group.
   *
   * @param group the group
   * @param payloadJson the payload as JSON text, or null for none
   * @return the notification id the browser will see ({@link JmsNotificationIds})
   */
  public String notifyGroup(String group, String payloadJson) {
    if (!EpushNames.isGroupName(group)) {
      throw EpushException.invalidArgument(
          "Group names are 1-200 characters of letters, digits and . _ : ~ -");
    }
    return send("epushGroup", group, payloadJson);
  }

  /**
   * Notifies one push ID, which must be known and not expired (else the ingress dead-letters the
   * message with {@code push_id_not_found}).
   *
   * @param pushId the push ID
   * @param payloadJson the payload as JSON text, or null for none
   * @return the notification id the browser will see
   */
  public String notifyPushId(String pushId, String payloadJson) {
    if (!EpushNames.isPushId(pushId)) {
      throw EpushException.invalidArgument(
          "Push IDs are 16-64 characters of letters, digits, _ and -.");
    }
    return send("epushPushId", pushId, payloadJson);
  }

  /** Closes the shared connection; later calls fail with {@code jms_error}. */
  @Override
  public void close() {
    synchronized (lock) {
      closed = true;
      drop();
    }
  }

  private String send(String property, String target, String payloadJson) {
    String payload = EpushNames.payload(payloadJson);
    Connection shared = connection();
    Session session = null;
    try {
      session = shared.createSession(false, Session.AUTO_ACKNOWLEDGE);
      MessageProducer producer = session.createProducer(session.createQueue(queueName));
      producer.setDeliveryMode(DeliveryMode.PERSISTENT);
      TextMessage message = session.createTextMessage(payload == null ? "" : payload);
      message.setStringProperty(property, target);
      producer.send(message);
      return JmsNotificationIds.forMessageId(message.getJMSMessageID());
    } catch (JMSException failed) {
      synchronized (lock) {
        if (connection == shared) drop();
      }
      throw new EpushException(
          "jms_error", "Sending to " + queueName + " failed: " + failed.getMessage(), 0, -1, 1, failed);
    } finally {
      if (session != null) {
        try {
          session.close();
        } catch (JMSException ignored) {
          // The connection is dropped on the next failure; nothing to do for one session.
        }
      }
    }
  }

  private Connection connection() {
    synchronized (lock) {
      if (closed) {
        throw new EpushException("jms_error", "The EpushJmsNotifier is closed.", 0, -1, 0, null);
      }
      if (connection == null) {
        try {
          Connection opened = factory.createConnection();
          opened.start();
          connection = opened;
        } catch (JMSException failed) {
          throw new EpushException(
              "jms_error", "Connecting to the broker failed: " + failed.getMessage(), 0, -1, 0, failed);
        }
      }
      return connection;
    }
  }

  private void drop() {
    if (connection == null) return;
    try {
      connection.close();
    } catch (JMSException ignored) {
      // Closing a broken connection may fail; it is discarded either way.
    }
    connection = null;
  }
}
