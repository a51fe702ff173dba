import java.util.Base64;
import javax.jms.BytesMessage;
import javax.jms.Connection;
import javax.jms.DeliveryMode;
import javax.jms.Destination;
import javax.jms.JMSException;
import javax.jms.Message;
import javax.jms.MessageProducer;
import javax.jms.Session;
import org.apache.activemq.ActiveMQConnectionFactory;

/**
 * A stand-in for "some Java application" in the JMS interoperability tests: it talks plain JMS
 * (javax.jms) over OpenWire, the way an existing JMS client of ActiveMQ would, and knows nothing
 * about STOMP or epush.
 *
 * <pre>
 * java EpushJmsProducer BROKER_URL USER PASSWORD DESTINATION BODY [KEY=VALUE ...]
 * </pre>
 *
 * DESTINATION is queue://NAME or topic://NAME. Each KEY=VALUE becomes a string property. The
 * message is persistent. Prints the JMS message ID and exits 0 once the broker has taken the
 * message; exits 2 on a JMS failure, 64 on bad arguments.
 *
 * Two system properties change what is sent, for tests of how a consumer treats it:
 * <ul>
 * <li>{@code -Depush.count=N} sends N messages over the one connection, in order, each with
 * {@code {i}} in BODY replaced by its number (1 to N), and prints one message ID a line;</li>
 * <li>{@code -Depush.bytes=true} sends a BytesMessage whose bytes are BODY decoded from base64,
 * instead of a TextMessage.</li>
 * </ul>
 *
 * Run it under a UTF-8 locale (LC_ALL=C.UTF-8): the JVM decodes its arguments with the locale's
 * charset, and under LANG=C every non-ASCII character arrives as U+FFFD.
 */
public final class EpushJmsProducer {
    private EpushJmsProducer() {}

    public static void main(String[] args) {
        if (args.length < 5) {
            fail(64, "usage: EpushJmsProducer BROKER_URL USER PASSWORD queue://NAME|topic://NAME"
                    + " BODY [KEY=VALUE ...]");
        }
        for (String arg : args) {
            if (arg.indexOf('\uFFFD') >= 0) {
                String charset = System.getProperty("sun.jnu.encoding");
                fail(64, "an argument arrived mangled (charset " + charset
                        + "): run the JVM under a UTF-8 locale, e.g. LC_ALL=C.UTF-8");
            }
        }
        String url = args[0];
        String user = args[1];
        String password = args[2];
        String destinationArg = args[3];
        String body = args[4];
        if (!destinationArg.startsWith("queue://") && !destinationArg.startsWith("topic://")) {
            fail(64, "the destination must be queue://NAME or topic://NAME: " + destinationArg);
        }
        for (int i = 5; i < args.length; i++) {
            if (args[i].indexOf('=') <= 0) {
                fail(64, "a property must look like KEY=VALUE, got: " + args[i]);
            }
        }
        // Without -Depush.count a BODY holding "{i}" is sent as it is.
        boolean numbered = System.getProperty("epush.count") != null;
        int count = 1;
        try {
            count = Integer.parseInt(System.getProperty("epush.count", "1"));
        } catch (NumberFormatException e) {
            fail(64, "-Depush.count must be a whole number: " + System.getProperty("epush.count"));
        }
        if (count < 1) {
            fail(64, "-Depush.count must be at least 1: " + count);
        }
        boolean bytes = Boolean.parseBoolean(System.getProperty("epush.bytes", "false"));
        byte[] bytesBody = null;
        if (bytes) {
            try {
                bytesBody = Base64.getDecoder().decode(body);
            } catch (IllegalArgumentException e) {
                fail(64, "with -Depush.bytes=true, BODY must be base64: " + e.getMessage());
            }
        }

        ActiveMQConnectionFactory factory = new ActiveMQConnectionFactory(user, password, url);
        Connection connection = null;
        try {
            connection = factory.createConnection();
            // start() sends the credentials: a refused login fails here, not at send time.
            connection.start();
            Session session = connection.createSession(false, Session.AUTO_ACKNOWLEDGE);
            Destination destination = destination(session, destinationArg);
            MessageProducer producer = session.createProducer(destination);
            producer.setDeliveryMode(DeliveryMode.PERSISTENT);
            for (int n = 1; n <= count; n++) {
                Message message;
                if (bytesBody != null) {
                    BytesMessage bytesMessage = session.createBytesMessage();
                    bytesMessage.writeBytes(bytesBody);
                    message = bytesMessage;
                } else {
                    String text = numbered ? body.replace("{i}", Integer.toString(n)) : body;
                    message = session.createTextMessage(text);
                }
                for (int i = 5; i < args.length; i++) {
                    int eq = args[i].indexOf('=');
                    message.setStringProperty(args[i].substring(0, eq), args[i].substring(eq + 1));
                }
                // A persistent send outside a transaction is synchronous: when it returns, the
                // broker has stored the message.
                producer.send(message);
                System.out.println(message.getJMSMessageID());
            }
        } catch (JMSException e) {
            fail(2, "sending to " + destinationArg + " at " + url + " failed: " + describe(e));
        } finally {
            if (connection != null) {
                try {
                    connection.close();
                } catch (JMSException e) {
                    // The message is already with the broker; a failed goodbye changes nothing.
                }
            }
        }
        System.exit(0);
    }

    private static Destination destination(Session session, String arg) throws JMSException {
        String name = arg.substring("queue://".length()); // both prefixes are 8 characters
        return arg.startsWith("queue://") ? session.createQueue(name) : session.createTopic(name);
    }

    private static String describe(Throwable e) {
        StringBuilder out = new StringBuilder(e.getClass().getName() + ": " + e.getMessage());
        for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) {
            out.append(" <- ").append(cause.getClass().getName()).append(": ")
                    .append(cause.getMessage());
        }
        return out.toString();
    }

    private static void fail(int status, String message) {
        System.err.println("EpushJmsProducer: " + message);
        System.exit(status);
    }
}
