package io.epush.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.epush.client.StubServer.Answer;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("EpushClient against a JDK HttpServer stub")
class EpushClientTest {
  static final String KEY = "unit-test-key";
  static final String PUSH_ID = "AAAAAAAAAAAAAAAAAAAAAA";
  static final String OTHER_ID = "BBBBBBBBBBBBBBBBBBBBBB";

  private final List<StubServer> servers = new ArrayList<>();

  private StubServer stub(java.util.function.Function<StubServer.Request, Answer> script)
      throws Exception {
    StubServer server = new StubServer(script);
    servers.add(server);
    return server;
  }

  @AfterEach
  void stopServers() {
    servers.forEach(StubServer::close);
  }

  private static EpushClientBuilder client(String... urls) {
    return EpushClient.builder()
        .urls(urls)
        .apiKey(KEY)
        .backoff(Duration.ZERO, Duration.ZERO)
        .requestTimeout(Duration.ofSeconds(5));
  }

  @Test
  @DisplayName("createPushIds posts the count with the bearer key and returns the push IDs")
  void createPushIds() throws Exception {
    StubServer server =
        stub(r -> Answer.json(201, "{\"pushIds\":[\"" + PUSH_ID + "\",\"" + OTHER_ID + "\"]}"));
    List<String> ids = client(server.url()).build().createPushIds(2);
    assertEquals(List.of(PUSH_ID, OTHER_ID), ids);
    StubServer.Request request = server.requests().get(0);
    assertEquals("POST", request.method);
    assertEquals("/api/push-ids", request.path);
    assertEquals("{\"count\":2}", request.body);
    assertEquals("Bearer " + KEY, request.authorization);
    assertEquals("application/json", request.contentType);
  }

  @Test
  @DisplayName("createPushIdsWithTokens returns the tokens, or null tokens when the server sends none")
  void createPushIdsWithTokens() throws Exception {
    StubServer server =
        stub(r -> Answer.json(201, "{\"pushIds\":[\"" + PUSH_ID + "\"],\"listenTokens\":[\"v1.9.abc\"]}"));
    PushIdsWithTokens minted = client(server.url()).build().createPushIdsWithTokens(1);
    assertEquals(List.of("v1.9.abc"), minted.listenTokens());
    server.script(r -> Answer.json(201, "{\"pushIds\":[\"" + PUSH_ID + "\"]}"));
    assertNull(client(server.url()).build().createPushIdsWithTokens(1).listenTokens());
  }

  @Test
  @DisplayName("listenTokens posts the push IDs and the lifetime and reads the expiry")
  void listenTokens() throws Exception {
    StubServer server =
        stub(r -> Answer.json(200, "{\"listenTokens\":[\"v1.1.a\"],\"expiresAt\":\"2030-01-01T00:00:00.000Z\"}"));
    ListenTokens tokens = client(server.url()).build().listenTokens(List.of(PUSH_ID), 60);
    assertEquals("2030-01-01T00:00:00.000Z", tokens.expiresAt());
    assertEquals("{\"pushIds\":[\"" + PUSH_ID + "\"],\"ttlSeconds\":60}", server.requests().get(0).body);
    server.script(r -> Answer.error(404, "not_found"));
    EpushException error =
        assertThrows(EpushException.class, () -> client(server.url()).build().listenTokens(List.of(PUSH_ID)));
    assertEquals("not_found", error.code());
    assertEquals(404, error.status());
    assertEquals(1, error.attempts(), "a 404 is not retried");
  }

  @Test
  @DisplayName("membership calls use PUT, DELETE and GET on the group's member paths")
  void membership() throws Exception {
    StubServer server =
        stub(
            r ->
                r.method.equals("GET")
                    ? Answer.json(200, "{\"members\":[\"" + PUSH_ID + "\"]}")
                    : Answer.json(204, ""));
    EpushClient push = client(server.url()).build();
    push.addMember("chat.room:1", PUSH_ID);
    push.removeMember("chat.room:1", PUSH_ID);
    assertEquals(List.of(PUSH_ID), push.members("chat.room:1"));
    List<StubServer.Request> seen = server.requests();
    assertEquals("PUT /api/groups/chat.room:1/members/" + PUSH_ID, seen.get(0).method + " " + seen.get(0).path);
    assertEquals("DELETE", seen.get(1).method);
    assertEquals("/api/groups/chat.room:1/members", seen.get(2).path);
  }

  @Test
  @DisplayName("notify sends the payload as JSON with an Idempotency-Key and returns the id")
  void notifyWithKey() throws Exception {
    StubServer server = stub(r -> Answer.json(202, "{\"id\":\"n-1\"}"));
    EpushClient push = client(server.url()).build();
    assertEquals("n-1", push.notifyGroup("news", "{ \"text\" : \"hi\" }"));
    assertEquals("n-1", push.notifyPushId(PUSH_ID, null));
    assertEquals("n-1", push.notifyPushId(PUSH_ID, "42", "order-7:shipped"));
    List<StubServer.Request> seen = server.requests();
    assertEquals("/api/groups/news/notify", seen.get(0).path);
    assertEquals("{\"payload\":{\"text\":\"hi\"}}", seen.get(0).body);
    assertTrue(EpushNames.isIdempotencyKey(seen.get(0).idempotencyKey));
    assertEquals("", seen.get(1).body, "no payload: no body");
    assertFalse(seen.get(0).idempotencyKey.equals(seen.get(1).idempotencyKey), "a fresh key per call");
    assertEquals("order-7:shipped", seen.get(2).idempotencyKey);
  }

  @Test
  @DisplayName("a notify whose connection broke before the answer is sent again with the same key")
  void unansweredNotifyIsRetriedWithTheSameKey() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    StubServer server =
        stub(r -> calls.incrementAndGet() == 1 ? Answer.brokenConnection() : Answer.json(202, "{\"id\":\"n-9\"}"));
    assertEquals("n-9", client(server.url()).build().notifyGroup("news", "1"));
    List<StubServer.Request> seen = server.requests();
    assertEquals(2, seen.size());
    assertNotNull(seen.get(0).idempotencyKey);
    assertEquals(seen.get(0).idempotencyKey, seen.get(1).idempotencyKey);
  }

  @Test
  @DisplayName("a notify that timed out is sent again with the same key")
  void timedOutNotifyIsRetriedWithTheSameKey() throws Exception {
    AtomicInteger calls = new AtomicInteger();
    StubServer server =
        stub(r -> calls.incrementAndGet() == 1 ? Answer.json(202, "{\"id\":\"late\"}").after(1500) : Answer.json(202, "{\"id\":\"n-2\"}"));
    String id = client(server.url()).requestTimeout(Duration.ofMillis(400)).build().notifyPushId(PUSH_ID, "1");
    assertEquals("n-2", id);
    List<StubServer.Request> seen = server.requests();
    assertEquals(seen.get(0).idempotencyKey, seen.get(1).idempotencyKey);
  }

  @Test
  @DisplayName("with retryUnansweredNotify(false) a broken notify fails with network_error after one attempt")
  void unansweredNotifyNotRetriedWhenDisabled() throws Exception {
    StubServer server = stub(r -> Answer.brokenConnection());
    EpushException error =
        assertThrows(
            EpushException.class,
            () -> client(server.url()).retryUnansweredNotify(false).build().notifyGroup("news", null));
    assertEquals("network_error", error.code());
    assertEquals(0, error.status());
    assertEquals(1, error.attempts());
    assertEquals(1, server.requests().size());
  }

  @Test
  @DisplayName("a 503 is retried on the next node, and calls start on the nodes in turn")
  void rotationOver503() throws Exception {
    StubServer down = stub(r -> Answer.error(503, "backplane_unavailable"));
    StubServer up = stub(r -> Answer.json(200, "{\"members\":[]}"));
    EpushClient push = client(down.url(), up.url()).build();
    push.members("a");
    push.members("b");
    assertEquals(1, down.requests().size(), "the first call started on the first node");
    assertEquals(2, up.requests().size(), "its retry and the second call went to the second");
  }

  @Test
  @DisplayName("a node that refuses connections is skipped, even for a notify that cannot repeat")
  void refusedConnectionIsSkipped() throws Exception {
    int closedPort;
    try (ServerSocket socket = new ServerSocket(0)) {
      closedPort = socket.getLocalPort();
    }
    StubServer up = stub(r -> Answer.json(202, "{\"id\":\"n-3\"}"));
    EpushClient push =
        client("http://127.0.0.1:" + closedPort, up.url()).retryUnansweredNotify(false).build();
    assertEquals("n-3", push.notifyGroup("g", "true"));
    assertEquals(1, up.requests().size());
  }

  @Test
  @DisplayName("errors carry the server's code and status; 400 and 409 are not retried")
  void errorsAreTyped() throws Exception {
    StubServer server = stub(r -> Answer.error(409, "idempotency_conflict"));
    EpushClient push = client(server.url()).build();
    EpushException conflict =
        assertThrows(EpushException.class, () -> push.notifyGroup("g", "1", "same-key"));
    assertEquals("idempotency_conflict", conflict.code());
    assertEquals(409, conflict.status());
    assertEquals(1, server.requests().size());
    server.script(r -> Answer.json(502, "<html>bad gateway</html>"));
    EpushException html = assertThrows(EpushException.class, () -> push.members("g"));
    assertEquals("unexpected_response", html.code());
    assertEquals(502, html.status());
  }

  @Test
  @DisplayName("429 is retried after the server's Retry-After, up to maxAttempts")
  void rateLimitedHonoursRetryAfter() throws Exception {
    StubServer server = stub(r -> Answer.retryAfter(429, "rate_limited", "1"));
    long began = System.nanoTime();
    EpushException error =
        assertThrows(EpushException.class, () -> client(server.url()).maxAttempts(2).build().cluster());
    long tookMillis = (System.nanoTime() - began) / 1_000_000;
    assertEquals("rate_limited", error.code());
    assertEquals(2, error.attempts());
    assertEquals(1000, error.retryAfterMillis());
    assertTrue(tookMillis >= 950, "waited for Retry-After, took " + tookMillis + " ms");
  }

  @Test
  @DisplayName("bad arguments are refused locally and nothing is sent")
  void badArgumentsAreNotSent() throws Exception {
    StubServer server = stub(r -> Answer.json(202, "{\"id\":\"x\"}"));
    EpushClient push = client(server.url()).build();
    List<Runnable> calls =
        List.of(
            () -> push.notifyGroup("bad group", null),
            () -> push.notifyPushId("short", null),
            () -> push.notifyGroup("g", "{not json"),
            () -> push.notifyGroup("g", "\"" + "x".repeat(65_536) + "\""),
            () -> push.notifyGroup("g", null, "bad key!"),
            () -> push.createPushIds(0),
            () -> push.createPushIds(1001),
            () -> push.groupHistory("g", null, 1001));
    for (Runnable call : calls) {
      EpushException error = assertThrows(EpushException.class, call::run);
      assertEquals("invalid_argument", error.code());
      assertEquals(0, error.attempts());
    }
    assertEquals(0, server.requests().size());
    assertEquals("invalid_argument", assertThrows(EpushException.class, () -> EpushClient.builder().url("ftp://x").apiKey("k").build()).code());
    assertEquals("invalid_argument", assertThrows(EpushException.class, () -> EpushClient.builder().url("http://x").build()).code());
  }

  @Test
  @DisplayName("presence of a push ID and of a group are read as docs/protocol.md answers them")
  void presence() throws Exception {
    StubServer server =
        stub(
            r ->
                r.path.endsWith("/presence")
                    ? Answer.json(200, "{\"members\":3,\"listening\":[\"" + PUSH_ID + "\"]}")
                    : Answer.json(200, "{\"pushId\":\"" + PUSH_ID + "\",\"state\":\"listening\",\"since\":\"2026-01-01T00:00:00Z\",\"groups\":[\"g\"]}"));
    EpushClient push = client(server.url()).build();
    PushIdPresence one = push.pushIdPresence(PUSH_ID);
    assertTrue(one.isListening());
    assertEquals(List.of("g"), one.groups());
    GroupPresence group = push.groupPresence("g");
    assertEquals(3, group.members());
    assertEquals(List.of(PUSH_ID), group.listening());
    assertEquals("/api/push-ids/" + PUSH_ID, server.requests().get(0).path);
    assertEquals("/api/groups/g/presence", server.requests().get(1).path);
  }

  @Test
  @DisplayName("history sends since and limit and reads notifications, cursor and reset")
  void history() throws Exception {
    StubServer server =
        stub(
            r ->
                Answer.json(
                    200,
                    "{\"notifications\":[{\"id\":\"n1\",\"pushId\":null,\"group\":\"g\",\"payload\":{\"a\":[1,2.5]},\"publishedAt\":\"2026-01-01T00:00:00Z\"},"
                        + "{\"id\":\"n2\",\"pushId\":\"" + PUSH_ID + "\",\"group\":null,\"payload\":null,\"publishedAt\":\"2026-01-01T00:00:01Z\"}],"
                        + "\"cursor\":\"k3-2\",\"reset\":true}"));
    EpushClient push = client(server.url()).build();
    HistoryPage page = push.groupHistory("g", "k3-1", 50);
    assertEquals("since=k3-1&limit=50", server.requests().get(0).query);
    assertEquals("k3-2", page.cursor());
    assertTrue(page.reset());
    assertEquals("{\"a\":[1,2.5]}", page.notifications().get(0).payloadJson());
    assertNull(page.notifications().get(0).pushId());
    assertNull(page.notifications().get(1).payloadJson());
    push.pushIdHistory(PUSH_ID, null, 0);
    assertEquals("/api/push-ids/" + PUSH_ID + "/notifications", server.requests().get(1).path);
    assertNull(server.requests().get(1).query);
  }

  @Test
  @DisplayName("an answer of the wrong shape is an unexpected_response, not a crash")
  void wrongShapes() throws Exception {
    StubServer server = stub(r -> Answer.json(200, "{\"nodes\":[{\"id\":7}]}"));
    EpushClient push = client(server.url()).build();
    assertEquals("unexpected_response", assertThrows(EpushException.class, push::cluster).code());
    server.script(r -> Answer.json(202, "{\"id\":\"\"}"));
    assertEquals("unexpected_response", assertThrows(EpushException.class, () -> push.notifyGroup("g", null)).code());
    server.script(r -> Answer.json(200, "{\"nodes\":[{\"id\":\"a\",\"connections\":2,\"startedAt\":\"s\",\"lastSeen\":\"l\"}]}"));
    assertEquals(2, push.cluster().get(0).connections());
  }

  @Test
  @DisplayName("one client is used by many threads at once: every notify answered, every key distinct")
  void threadSafe() throws Exception {
    AtomicInteger ids = new AtomicInteger();
    StubServer server = stub(r -> Answer.json(202, "{\"id\":\"n-" + ids.incrementAndGet() + "\"}"));
    EpushClient push = client(server.url()).build();
    ExecutorService pool = Executors.newFixedThreadPool(8);
    List<Future<String>> futures = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      int n = i;
      futures.add(pool.submit(() -> push.notifyPushId(PUSH_ID, Integer.toString(n))));
    }
    Set<String> answered = new HashSet<>();
    for (Future<String> future : futures) answered.add(future.get());
    pool.shutdown();
    assertEquals(200, answered.size());
    Set<String> keys = new HashSet<>();
    for (StubServer.Request request : server.requests()) keys.add(request.idempotencyKey);
    assertEquals(200, keys.size());
  }

  @Test
  @DisplayName("Retry-After is read as seconds or as an HTTP date")
  void retryAfterParsing() {
    assertEquals(3000, CallRunner.retryAfterMillis("3"));
    assertEquals(-1, CallRunner.retryAfterMillis("soon"));
    assertEquals(-1, CallRunner.retryAfterMillis(null));
    assertEquals(0, CallRunner.retryAfterMillis("Wed, 21 Oct 2015 07:28:00 GMT"));
  }
}
