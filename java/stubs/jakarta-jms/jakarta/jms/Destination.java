// Compile-only signature (see ../../README.md); never packaged.
package jakarta.jms;

public interface Destination {

}
