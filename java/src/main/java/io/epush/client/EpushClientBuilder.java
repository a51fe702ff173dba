package io.epush.client;

import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Configures an {@link EpushClient}; get one from {@link EpushClient#builder()}. Not thread-safe
 * (build the client once, then share the client, which is).
 */
public final class EpushClientBuilder {
  private final List<String> urls = new ArrayList<>();
  private String apiKey;
  private Duration requestTimeout = Duration.ofSeconds(10);
  private Duration connectTimeout;
  private int maxAttempts = 5;
  private Duration baseDelay = Duration.ofMillis(100);
  private Duration maxDelay = Duration.ofSeconds(2);
  private boolean retryUnansweredNotify = true;

  EpushClientBuilder() {}

  /**
   * One node, or a load balancer in front of the cluster, e.g. {@code http://push.internal:8080}.
   * May be called several times: each call adds a node.
   *
   * @param url an http(s) URL without query, fragment or credentials; a path is kept as prefix
   * @return this builder
   */
  public EpushClientBuilder url(String url) {
    urls.add(url);
    return this;
  }

  /**
   * Several nodes: calls start on them in turn, and every retry moves to the next one.
   *
   * @param urls node URLs, as for {@link #url(String)}
   * @return this builder
   */
  public EpushClientBuilder urls(String... urls) {
    this.urls.addAll(Arrays.asList(urls));
    return this;
  }

  /**
   * The bearer key: one of the server's {@code --api-key} values. Required.
   *
   * @param apiKey printable ASCII without spaces
   * @return this builder
   */
  public EpushClientBuilder apiKey(String apiKey) {
    this.apiKey = apiKey;
    return this;
  }

  /**
   * Per attempt: send the request and read the whole answer. Default 10 seconds.
   *
   * @param timeout a positive duration
   * @return this builder
   */
  public EpushClientBuilder requestTimeout(Duration timeout) {
    this.requestTimeout = timeout;
    return this;
  }

  /**
   * How long to wait for a TCP connection to a node before trying the next. Default: half the
   * request timeout, at most 5 seconds.
   *
   * @param timeout a positive duration
   * @return this builder
   */
  public EpushClientBuilder connectTimeout(Duration timeout) {
    this.connectTimeout = timeout;
    return this;
  }

  /**
   * Requests per call, the first included (1 = never retry). Default 5.
   *
   * @param attempts at least 1
   * @return this builder
   */
  public EpushClientBuilder maxAttempts(int attempts) {
    this.maxAttempts = attempts;
    return this;
  }

  /**
   * Backoff before retry k: a random delay in 0..min(max, base * 2^(k-1)); a longer Retry-After
   * from the server wins (capped at 60 s). Defaults 100 ms and 2 s.
   *
   * @param base the first cap, zero or more
   * @param max the largest cap, zero or more
   * @return this builder
   */
  public EpushClientBuilder backoff(Duration base, Duration max) {
    this.baseDelay = base;
    this.maxDelay = max;
    return this;
  }

  /**
   * Whether a notify whose answer never arrived (connection broken after sending, timeout) is
   * sent again with the same {@code Idempotency-Key}. Default true: a server with idempotent
   * notify (docs/protocol.md) answers the repeat with the first call's id and publishes nothing more. Set
   * false against a server without it, where the repeat would publish a second time.
   *
   * @param retry whether to retry an unanswered notify
   * @return this builder
   */
  public EpushClientBuilder retryUnansweredNotify(boolean retry) {
    this.retryUnansweredNotify = retry;
    return this;
  }

  /**
   * Checks the settings and builds the client.
   *
   * @return an immutable, thread-safe client
   * @throws EpushException {@code invalid_argument} naming the first bad setting
   */
  public EpushClient build() {
    if (urls.isEmpty()) throw EpushException.invalidArgument("Give at least one node URL.");
    List<URI> nodes = new ArrayList<>();
    for (String url : urls) nodes.add(nodeUri(url));
    if (apiKey == null || !apiKey.matches("[\\x21-\\x7e]+")) {
      throw EpushException.invalidArgument(
          "The API key must be a non-empty string of printable ASCII without spaces.");
    }
    positive(requestTimeout, "requestTimeout");
    Duration connect = connectTimeout;
    if (connect == null) {
      long half = Math.max(1, requestTimeout.toMillis() / 2);
      connect = Duration.ofMillis(Math.min(5_000, half));
    }
    positive(connect, "connectTimeout");
    if (maxAttempts < 1) throw EpushException.invalidArgument("maxAttempts must be at least 1.");
    if (baseDelay == null || maxDelay == null || baseDelay.isNegative() || maxDelay.isNegative()) {
      throw EpushException.invalidArgument("The backoff delays must be zero or more.");
    }
    HttpClient http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(connect)
            .followRedirects(HttpClient.Redirect.NEVER)
            .build();
    CallRunner runner =
        new CallRunner(
            http,
            nodes,
            apiKey,
            requestTimeout,
            maxAttempts,
            baseDelay.toMillis(),
            maxDelay.toMillis());
    return new EpushClient(runner, retryUnansweredNotify);
  }

  private static void positive(Duration duration, String what) {
    if (duration == null || duration.isZero() || duration.isNegative()) {
      throw EpushException.invalidArgument(what + " must be a positive duration.");
    }
  }

  /** The node's base URI without a trailing slash, so that paths append to it. */
  private static URI nodeUri(String url) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException | NullPointerException bad) {
      throw EpushException.invalidArgument("\"" + url + "\" is not a URL.");
    }
    String scheme = uri.getScheme();
    if (!("http".equals(scheme) || "https".equals(scheme)) || uri.getHost() == null) {
      throw EpushException.invalidArgument("\"" + url + "\" is not an http(s) URL.");
    }
    if (uri.getRawQuery() != null || uri.getRawFragment() != null || uri.getRawUserInfo() != null) {
      throw EpushException.invalidArgument(
          "\"" + url + "\": a node URL has no query, fragment or credentials.");
    }
    String text = uri.toString();
    while (text.endsWith("/")) text = text.substring(0, text.length() - 1);
    return URI.create(text);
  }
}
