package io.epush.sample;

import io.epush.client.jms.javax.EpushJmsNotifier;
import org.apache.activemq.ActiveMQConnectionFactory;

/**
 * The JMS side of the sample, in its own class so that the JMS classes load only when {@code
 * EPUSH_JMS_URL} is set. A real application would take the ConnectionFactory from JNDI.
 */
final class SampleJms {
  private final EpushJmsNotifier notifier;

  SampleJms(String brokerUrl, String user, String password) {
    notifier = new EpushJmsNotifier(new ActiveMQConnectionFactory(user, password, brokerUrl));
  }

  String notifyPushId(String pushId, String payloadJson) {
    return notifier.notifyPushId(pushId, payloadJson);
  }

  void close() {
    notifier.close();
  }
}
