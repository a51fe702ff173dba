package io.epush.client;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.channels.UnresolvedAddressException;
import java.time.Duration;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeParseException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Sends one API call with the retry policy (java/README.md has the table): 503 and 429 are
 * retried for every call (the server did not act); a failure before the request left this
 * process (connection refused, connect timeout, unknown host) too; a broken connection or a
 * timeout after sending only for calls that are safe to repeat. Each retry moves to the next node.
 * Thread-safe: the only mutable state is the round-robin counter.
 */
final class CallRunner {
  /** A Retry-After longer than this is waited for this long only (a broken header cannot stall). */
  private static final long MAX_RETRY_AFTER_MILLIS = 60_000;

  /** One API call: method, path below a node's base path (already encoded), optional body. */
  static final class Call {
    final String method;
    final String path;
    final String body;
    final boolean repeatable;
    final Map<String, String> headers;

    Call(String method, String path, String body, boolean repeatable, Map<String, String> headers) {
      this.method = method;
      this.path = path;
      this.body = body;
      this.repeatable = repeatable;
      this.headers = headers;
    }

    String name() {
      return method + " " + path;
    }
  }

  private final HttpClient http;
  private final List<URI> nodes;
  private final String authorization;
  private final Duration requestTimeout;
  private final int maxAttempts;
  private final long baseDelayMillis;
  private final long maxDelayMillis;
  private final AtomicInteger nextNode = new AtomicInteger();

  CallRunner(
      HttpClient http,
      List<URI> nodes,
      String apiKey,
      Duration requestTimeout,
      int maxAttempts,
      long baseDelayMillis,
      long maxDelayMillis) {
    this.http = http;
    this.nodes = List.copyOf(nodes);
    this.authorization = "Bearer " + apiKey;
    this.requestTimeout = requestTimeout;
    this.maxAttempts = maxAttempts;
    this.baseDelayMillis = baseDelayMillis;
    this.maxDelayMillis = maxDelayMillis;
  }

  /** Runs the call; answers the parsed JSON body of a 2xx answer (null when it had none). */
  Object run(Call call) {
    int first = Math.floorMod(nextNode.getAndIncrement(), nodes.size());
    for (int attempt = 1; ; attempt++) {
      URI node = nodes.get((first + attempt - 1) % nodes.size());
      Outcome outcome = attempt(node, call);
      if (outcome.error == null) return outcome.body;
      EpushException error = outcome.error.withAttempts(attempt);
      if (!outcome.retry || attempt >= maxAttempts) throw error;
      sleep(backoff(attempt, error.retryAfterMillis()), error);
    }
  }

  private static final class Outcome {
    final Object body;
    final EpushException error;
    final boolean retry;

    Outcome(Object body, EpushException error, boolean retry) {
      this.body = body;
      this.error = error;
      this.retry = retry;
    }
  }

  private Outcome attempt(URI node, Call call) {
    HttpRequest.Builder request =
        HttpRequest.newBuilder(URI.create(node.toString() + call.path))
            .timeout(requestTimeout)
            .header("Authorization", authorization)
            .header("Accept", "application/json")
            .header("User-Agent", "epush-java");
    for (Map.Entry<String, String> header : call.headers.entrySet()) {
      request.header(header.getKey(), header.getValue());
    }
    if (call.body != null) request.header("Content-Type", "application/json");
    request.method(
        call.method,
        call.body == null
            ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(call.body));
    HttpResponse<String> response;
    try {
      response = http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    } catch (HttpConnectTimeoutException | ConnectException notSent) {
      return failure("network_error", call.name() + ": " + describe(notSent), notSent, true);
    } catch (HttpTimeoutException timeout) {
      String message =
          call.name() + " got no complete answer within " + requestTimeout.toMillis() + " ms.";
      return failure("timeout", message, timeout, call.repeatable);
    } catch (IOException broken) {
      return failure("network_error", call.name() + ": " + describe(broken), broken, call.repeatable);
    } catch (UnresolvedAddressException unknownHost) {
      return failure("network_error", call.name() + ": unknown host", unknownHost, true);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
      throw new EpushException(
          "interrupted", call.name() + " was interrupted.", 0, -1, 0, interrupted);
    }
    return answered(call, response);
  }

  private Outcome answered(Call call, HttpResponse<String> response) {
    int status = response.statusCode();
    String text = response.body();
    Object body = null;
    boolean parsed = true;
    if (text != null && !text.isEmpty()) {
      try {
        body = Json.parse(text);
      } catch (IllegalArgumentException notJson) {
        parsed = false;
      }
    }
    if (status >= 200 && status < 300) {
      if (!parsed) {
        return new Outcome(
            null, Answers.unexpected(call.name() + " answered " + status + " with no JSON."), false);
      }
      return new Outcome(body, null, false);
    }
    long retryAfter = retryAfterMillis(response.headers().firstValue("Retry-After").orElse(null));
    Object served = body instanceof Map ? ((Map<?, ?>) body).get("error") : null;
    Object code = served instanceof Map ? ((Map<?, ?>) served).get("code") : null;
    Object message = served instanceof Map ? ((Map<?, ?>) served).get("message") : null;
    EpushException error =
        code instanceof String
            ? new EpushException(
                (String) code,
                message instanceof String ? (String) message : "HTTP " + status,
                status,
                retryAfter,
                0,
                null)
            : new EpushException(
                "unexpected_response",
                call.name() + " answered HTTP " + status + " without an epush error body.",
                status,
                retryAfter,
                0,
                null);
    // 503 (backplane unavailable, draining, no node behind a proxy) and 429: the server did not act.
    return new Outcome(null, error, status == 503 || status == 429);
  }

  private static Outcome failure(String code, String message, Throwable cause, boolean retry) {
    return new Outcome(null, new EpushException(code, message, 0, -1, 0, cause), retry);
  }

  private static String describe(Throwable error) {
    String message = error.getMessage();
    return error.getClass().getSimpleName() + (message == null ? "" : " (" + message + ")");
  }

  /** Full jitter; a longer Retry-After wins, capped at a minute. */
  private long backoff(int attempt, long retryAfterMillis) {
    long cap = Math.min(maxDelayMillis, baseDelayMillis << Math.min(attempt - 1, 20));
    long delay = cap == 0 ? 0 : ThreadLocalRandom.current().nextLong(cap + 1);
    return retryAfterMillis > delay ? Math.min(retryAfterMillis, MAX_RETRY_AFTER_MILLIS) : delay;
  }

  private static void sleep(long millis, EpushException pending) {
    try {
      Thread.sleep(millis);
    } catch (InterruptedException interrupted) {
      Thread.currentThread().interrupt();
      throw pending;
    }
  }

  /** Retry-After as delay-seconds or an HTTP date, in milliseconds; -1 when absent or bad. */
  static long retryAfterMillis(String header) {
    if (header == null || header.trim().isEmpty()) return -1;
    String value = header.trim();
    if (value.matches("\\d{1,9}")) return Long.parseLong(value) * 1000;
    try {
      ZonedDateTime at = ZonedDateTime.parse(value, DateTimeFormatter.RFC_1123_DATE_TIME);
      return Math.max(0, at.toInstant().toEpochMilli() - System.currentTimeMillis());
    } catch (DateTimeParseException bad) {
      return -1;
    }
  }
}
