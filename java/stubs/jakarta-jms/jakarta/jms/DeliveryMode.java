// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface DeliveryMode {
  int NON_PERSISTENT = 1;
  int PERSISTENT = 2;
}
