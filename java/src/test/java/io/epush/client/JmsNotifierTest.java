package io.epush.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

/**
 * The JMS helpers against an in-memory fake provider (dynamic proxies of the API interfaces): the
 * message they build. The real broker path is covered by test/e2e/java-app-servers.
 */
@DisplayName("EpushJmsNotifier (javax and jakarta)")
class JmsNotifierTest {
  static final String PUSH_ID = "AAAAAAAAAAAAAAAAAAAAAA";

  /** What the fake provider saw. */
  static final class Sent {
    String queue;
    String text;
    int deliveryMode;
    final Map<String, String> properties = new LinkedHashMap<>();
    String messageId;
  }

  /** A fake provider for the API whose interfaces live in {@code pkg}. */
  static final class FakeProvider {
    final List<Sent> sent = new ArrayList<>();
    final AtomicInteger connections = new AtomicInteger();
    volatile boolean failSends;
    final String pkg;

    FakeProvider(String pkg) {
      this.pkg = pkg;
    }

    Object proxy(String type, InvocationHandler handler) throws ClassNotFoundException {
      Class<?> api = Class.forName(pkg + "." + type);
      return Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {api}, handler);
    }

    Exception jmsException(String why) throws Exception {
      return (Exception) Class.forName(pkg + ".JMSException").getConstructor(String.class).newInstance(why);
    }

    Object factory() throws Exception {
      return proxy("ConnectionFactory", (p, m, a) -> {
        connections.incrementAndGet();
        return connection();
      });
    }

    private Object connection() throws Exception {
      return proxy("Connection", (p, m, a) -> m.getName().equals("createSession") ? session() : null);
    }

    private Object session() throws Exception {
      Sent message = new Sent();
      return proxy("Session", (p, m, a) -> {
        switch (m.getName()) {
          case "createQueue":
            message.queue = (String) a[0];
            return proxy("Queue", (q, qm, qa) -> message.queue);
          case "createProducer":
            return proxy("MessageProducer", (q, pm, pa) -> {
              if (pm.getName().equals("setDeliveryMode")) message.deliveryMode = (Integer) pa[0];
              if (pm.getName().equals("send")) {
                if (failSends) throw jmsException("broker gone");
                message.messageId = "ID:fake-" + sent.size();
                sent.add(message);
              }
              return null;
            });
          case "createTextMessage":
            message.text = (String) a[0];
            return proxy("TextMessage", (q, tm, ta) -> {
              if (tm.getName().equals("setStringProperty")) message.properties.put((String) ta[0], (String) ta[1]);
              if (tm.getName().equals("getJMSMessageID")) return message.messageId;
              return null;
            });
          default:
            return null;
        }
      });
    }
  }

  @Test
  @DisplayName("the JMS message ID maps to the id the ingress gives (same vector as the server)")
  void idVector() {
    assertEquals("jms-IngAp9_dRVDW47jUOpN7vr", JmsNotificationIds.forMessageId("ID:host-1234-5678-1:1:1:1:1"));
  }

  @Test
  @DisplayName("javax: a persistent TextMessage to epush.notify with the target property and compact payload")
  void javaxMessage() throws Exception {
    FakeProvider provider = new FakeProvider("javax.jms");
    try (io.epush.client.jms.javax.EpushJmsNotifier notifier =
        new io.epush.client.jms.javax.EpushJmsNotifier((javax.jms.ConnectionFactory) provider.factory())) {
      String id = notifier.notifyGroup("news", "{ \"a\" : 1 }");
      notifier.notifyPushId(PUSH_ID, null);
      assertEquals(JmsNotificationIds.forMessageId("ID:fake-0"), id);
    }
    Sent first = provider.sent.get(0);
    assertEquals("epush.notify", first.queue);
    assertEquals("{\"a\":1}", first.text);
    assertEquals(2, first.deliveryMode, "PERSISTENT");
    assertEquals(Map.of("epushGroup", "news"), first.properties);
    Sent second = provider.sent.get(1);
    assertEquals("", second.text, "no payload: empty text");
    assertEquals(Map.of("epushPushId", PUSH_ID), second.properties);
    assertEquals(1, provider.connections.get(), "one shared connection");
  }

  @Test
  @DisplayName("jakarta: the same message through the jakarta.jms API, to a prefixed queue")
  void jakartaMessage() throws Exception {
    FakeProvider provider = new FakeProvider("jakarta.jms");
    try (io.epush.client.jms.jakarta.EpushJmsNotifier notifier =
        new io.epush.client.jms.jakarta.EpushJmsNotifier(
            (jakarta.jms.ConnectionFactory) provider.factory(), "shop.prod.notify")) {
      notifier.notifyPushId(PUSH_ID, "\"hi\"");
    }
    Sent sent = provider.sent.get(0);
    assertEquals("shop.prod.notify", sent.queue);
    assertEquals("\"hi\"", sent.text);
    assertEquals(Map.of("epushPushId", PUSH_ID), sent.properties);
  }

  @Test
  @DisplayName("a failed send is a jms_error and the next send opens a new connection; bad targets are refused locally")
  void failures() throws Exception {
    FakeProvider provider = new FakeProvider("javax.jms");
    io.epush.client.jms.javax.EpushJmsNotifier notifier =
        new io.epush.client.jms.javax.EpushJmsNotifier((javax.jms.ConnectionFactory) provider.factory());
    provider.failSends = true;
    assertEquals("jms_error", assertThrows(EpushException.class, () -> notifier.notifyGroup("g", null)).code());
    provider.failSends = false;
    notifier.notifyGroup("g", null);
    assertEquals(2, provider.connections.get());
    assertEquals("invalid_argument", assertThrows(EpushException.class, () -> notifier.notifyGroup("a b", null)).code());
    assertEquals("invalid_argument", assertThrows(EpushException.class, () -> notifier.notifyPushId("x", null)).code());
    assertEquals("invalid_argument", assertThrows(EpushException.class, () -> notifier.notifyGroup("g", "{")).code());
    notifier.close();
    assertEquals("jms_error", assertThrows(EpushException.class, () -> notifier.notifyGroup("g", null)).code());
    assertEquals(1, provider.sent.size());
  }
}
