package io.epush.client;

/**
 * Every failure of an {@link EpushClient} call (and of the JMS and servlet helpers).
 *
 * <p>{@link #code()} is the server's snake_case error code ({@code unauthorized}, {@code
 * push_id_not_found}, {@code backplane_unavailable}, {@code idempotency_conflict}, ...) or one of
 * the client's own:
 *
 * <ul>
 *   <li>{@code invalid_argument}: an argument broke the server's rules; nothing was sent.
 *   <li>{@code network_error}: the connection failed or broke before a complete answer.
 *   <li>{@code timeout}: no complete answer within the request timeout.
 *   <li>{@code unexpected_response}: an answer not shaped as the API says (a proxy's HTML 502).
 *   <li>{@code interrupted}: the calling thread was interrupted (its interrupt flag is set again).
 *   <li>{@code jms_error}: the JMS provider refused the message (the cause holds its exception).
 * </ul>
 *
 * <p>Unchecked, like the JDK's own {@link java.io.UncheckedIOException}: most callers let it
 * propagate to their request handler.
 */
public class EpushException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  private final String code;
  private final int status;
  private final long retryAfterMillis;
  private final int attempts;

  /**
   * Creates an exception.
   *
   * @param code the snake_case code
   * @param message a sentence saying what happened
   * @param status the HTTP status of the last answer, 0 when none came
   * @param retryAfterMillis the last answer's Retry-After in milliseconds, -1 when absent
   * @param attempts requests tried for the call (0 when refused locally)
   * @param cause the underlying exception, or null
   */
  public EpushException(
      String code,
      String message,
      int status,
      long retryAfterMillis,
      int attempts,
      Throwable cause) {
    super(message, cause);
    this.code = code;
    this.status = status;
    this.retryAfterMillis = retryAfterMillis;
    this.attempts = attempts;
  }

  /**
   * An exception raised before anything was sent (code {@code invalid_argument}).
   *
   * @param message what is wrong with the argument
   * @return the exception
   */
  public static EpushException invalidArgument(String message) {
    return new EpushException("invalid_argument", message, 0, -1, 0, null);
  }

  /**
   * The error code: the server's, or the client's own (see the class comment).
   *
   * @return the snake_case code
   */
  public String code() {
    return code;
  }

  /**
   * The HTTP status of the last answer.
   *
   * @return the status, or 0 when no answer came (local refusal, network failure, timeout)
   */
  public int status() {
    return status;
  }

  /**
   * The server's Retry-After on the last answer.
   *
   * @return milliseconds, or -1 when the answer had none
   */
  public long retryAfterMillis() {
    return retryAfterMillis;
  }

  /**
   * How many requests the call sent (or tried to send).
   *
   * @return the number of attempts, 0 when the call was refused before sending
   */
  public int attempts() {
    return attempts;
  }

  /**
   * A copy that records the number of attempts of the whole call.
   *
   * @param attempts requests tried
   * @return a new exception with the same code, message, status and cause
   */
  EpushException withAttempts(int attempts) {
    EpushException copy =
        new EpushException(code, getMessage(), status, retryAfterMillis, attempts, getCause());
    copy.setStackTrace(getStackTrace());
    return copy;
  }

  @Override
  public String toString() {
    return "EpushException[" + code + (status == 0 ? "" : ", HTTP " + status) + "]: " + getMessage();
  }
}
