// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface Connection extends AutoCloseable {
  Session createSession(boolean transacted, int acknowledgeMode) throws JMSException;
  void start() throws JMSException;
  @Override void close() throws JMSException;
}
