// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public class JMSException extends Exception {
  private static final long serialVersionUID = 1L;

  public JMSException(String reason) {
    super(reason);
  }
}
