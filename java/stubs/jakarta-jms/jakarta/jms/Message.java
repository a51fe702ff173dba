// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface Message {
  String getJMSMessageID() throws JMSException;
  void setStringProperty(String name, String value) throws JMSException;
}
