// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface Queue extends Destination {
  String getQueueName() throws JMSException;
}
