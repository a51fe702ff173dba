// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface MessageProducer extends AutoCloseable {
  void setDeliveryMode(int deliveryMode) throws JMSException;
  void send(Message message) throws JMSException;
  @Override void close() throws JMSException;
}
