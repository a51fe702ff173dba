// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface Session extends AutoCloseable {
  int AUTO_ACKNOWLEDGE = 1;
  Queue createQueue(String queueName) throws JMSException;
  MessageProducer createProducer(Destination destination) throws JMSException;
  TextMessage createTextMessage(String text) throws JMSException;
  @Override void close() throws JMSException;
}
