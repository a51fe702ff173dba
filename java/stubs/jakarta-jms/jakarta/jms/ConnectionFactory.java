// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface ConnectionFactory {
  Connection createConnection() throws JMSException;
}
