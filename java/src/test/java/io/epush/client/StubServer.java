package io.epush.client;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.function.Function;

/**
 * A JDK HttpServer on a free loopback port that records every request and answers it with a
 * scripted function: the server side of the client's unit tests.
 */
final class StubServer implements AutoCloseable {
  /** One request as the server received it. */
  static final class Request {
    final String method;
    final String path;
    final String query;
    final String body;
    final String authorization;
    final String idempotencyKey;
    final String contentType;

    Request(HttpExchange exchange, String body) {
      this.method = exchange.getRequestMethod();
      this.path = exchange.getRequestURI().getRawPath();
      this.query = exchange.getRequestURI().getRawQuery();
      this.body = body;
      this.authorization = exchange.getRequestHeaders().getFirst("Authorization");
      this.idempotencyKey = exchange.getRequestHeaders().getFirst("Idempotency-Key");
      this.contentType = exchange.getRequestHeaders().getFirst("Content-Type");
    }
  }

  /** What to do with a request: answer it, or break the connection. */
  static final class Answer {
    final int status;
    final String body;
    final String retryAfter;
    final boolean breakConnection;
    final long delayMillis;

    private Answer(int status, String body, String retryAfter, boolean breakConnection, long delay) {
      this.status = status;
      this.body = body;
      this.retryAfter = retryAfter;
      this.breakConnection = breakConnection;
      this.delayMillis = delay;
    }

    static Answer json(int status, String body) {
      return new Answer(status, body, null, false, 0);
    }

    static Answer error(int status, String code) {
      return json(status, "{\"error\":{\"code\":\"" + code + "\",\"message\":\"stub says " + code + "\"}}");
    }

    static Answer retryAfter(int status, String code, String header) {
      Answer base = error(status, code);
      return new Answer(status, base.body, header, false, 0);
    }

    /** Reads the request, then closes the connection without an answer. */
    static Answer brokenConnection() {
      return new Answer(0, null, null, true, 0);
    }

    Answer after(long millis) {
      return new Answer(status, body, retryAfter, breakConnection, millis);
    }
  }

  private final HttpServer server;
  private final List<Request> requests = new ArrayList<>();
  private volatile Function<Request, Answer> script;

  StubServer(Function<Request, Answer> script) throws IOException {
    this.script = script;
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext("/", this::handle);
    server.setExecutor(Executors.newCachedThreadPool());
    server.start();
  }

  void script(Function<Request, Answer> script) {
    this.script = script;
  }

  String url() {
    return "http://127.0.0.1:" + server.getAddress().getPort();
  }

  synchronized List<Request> requests() {
    return new ArrayList<>(requests);
  }

  private void handle(HttpExchange exchange) throws IOException {
    String body = new String(exchange.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
    Request request = new Request(exchange, body);
    synchronized (this) {
      requests.add(request);
    }
    Answer answer = script.apply(request);
    if (answer.delayMillis > 0) {
      try {
        Thread.sleep(answer.delayMillis);
      } catch (InterruptedException stop) {
        Thread.currentThread().interrupt();
      }
    }
    if (answer.breakConnection) {
      exchange.close(); // no status line: the client sees the connection end
      return;
    }
    byte[] bytes = answer.body == null ? new byte[0] : answer.body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", "application/json");
    if (answer.retryAfter != null) exchange.getResponseHeaders().set("Retry-After", answer.retryAfter);
    exchange.sendResponseHeaders(answer.status, answer.status == 204 ? -1 : bytes.length);
    if (answer.status != 204) {
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(bytes);
      }
    }
    exchange.close();
  }

  @Override
  public void close() {
    server.stop(0);
  }
}
