package io.epush.sample;

import io.epush.client.EpushClient;
import io.epush.client.EpushException;
import io.epush.client.Json;
import io.epush.client.PageView;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The sample application, without any servlet API: the servlets of both APIs (packages
 * {@code jakarta} and {@code javax}) call it. Configured from the environment:
 *
 * <ul>
 *   <li>{@code EPUSH_URLS}: the epush nodes, comma-separated (the client rotates over them);
 *   <li>{@code EPUSH_API_KEY}: the API key;
 *   <li>{@code EPUSH_JMS_URL}, {@code EPUSH_JMS_USER}, {@code EPUSH_JMS_PASSWORD}: optional, an
 *       ActiveMQ OpenWire URL; without it, notifying "via jms" answers 501.
 * </ul>
 */
public final class SampleApp {
  private static SampleApp instance;

  private final EpushClient client;
  private final SampleJms jms;

  private SampleApp() {
    String urls = setting("EPUSH_URLS");
    client =
        EpushClient.builder()
            .urls(urls.split(","))
            .apiKey(setting("EPUSH_API_KEY"))
            .requestTimeout(java.time.Duration.ofSeconds(5))
            .build();
    String jmsUrl = System.getenv("EPUSH_JMS_URL");
    jms =
        jmsUrl == null || jmsUrl.isEmpty()
            ? null
            : new SampleJms(jmsUrl, setting("EPUSH_JMS_USER"), setting("EPUSH_JMS_PASSWORD"));
  }

  /**
   * The application, created on first use.
   *
   * @return the one instance
   */
  public static synchronized SampleApp get() {
    if (instance == null) instance = new SampleApp();
    return instance;
  }

  /**
   * The client, for the servlet helpers.
   *
   * @return the shared client
   */
  public EpushClient client() {
    return client;
  }

  /** Closes the JMS connection (when the web application stops). */
  public static synchronized void shutdown() {
    if (instance != null && instance.jms != null) instance.jms.close();
    instance = null;
  }

  /**
   * The page of one view: two buttons that ask this application to notify the view, over HTTP
   * or over JMS, and the list of what arrived.
   *
   * @param view the view's push ID
   * @return the HTML page
   */
  public String page(PageView view) {
    return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>epush on a Java server</title></head>\n"
        + "<body data-push-id=\"" + view.pushId() + "\">\n"
        + "<p>Status: <span id=\"status\">connecting</span></p>\n"
        + "<button id=\"http\">Notify me over HTTP</button> <button id=\"jms\">Notify me over JMS</button>\n"
        + "<ul id=\"log\"></ul>\n"
        + "<script>\n"
        + "window.received = [];\n"
        + "window.onPush = function (n) {\n"
        + "  window.received.push(n);\n"
        + "  var li = document.createElement('li');\n"
        + "  li.textContent = JSON.stringify(n.payload);\n"
        + "  document.getElementById('log').appendChild(li);\n"
        + "};\n"
        + "window.onPushStatus = function (s) { document.getElementById('status').textContent = s; };\n"
        + "var clicks = 0;\n"
        + "window.sendNotify = function (via, n) {\n"
        + "  var body = 'via=' + via + '&n=' + n + '&pushId=' + encodeURIComponent(document.body.dataset.pushId);\n"
        + "  return fetch('/notify', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body })\n"
        + "    .then(function (r) { return r.text().then(function (t) { return { status: r.status, body: t }; }); });\n"
        + "};\n"
        + "document.getElementById('http').onclick = function () { window.sendNotify('http', 'click-' + (++clicks)); };\n"
        + "document.getElementById('jms').onclick = function () { window.sendNotify('jms', 'click-' + (++clicks)); };\n"
        + "</script>\n"
        + view.script("onPush").withStatusCallback("onPushStatus").html()
        + "</body></html>\n";
  }

  /** An answer of {@link #notify}: HTTP status and JSON body. */
  public static final class Answer {
    /** The HTTP status. */
    public final int status;
    /** The JSON body. */
    public final String body;

    Answer(int status, String body) {
      this.status = status;
      this.body = body;
    }
  }

  /**
   * Notifies one push ID with {@code {"via": via, "n": n}}, through the HTTP client or JMS.
   *
   * @param via {@code http} or {@code jms}
   * @param pushId the view's push ID
   * @param n the caller's label for this notification
   * @return 200 with the notification id, or the error
   */
  public Answer notify(String via, String pushId, String n) {
    Map<String, Object> payload = new LinkedHashMap<>();
    payload.put("via", via);
    payload.put("n", n);
    String json = Json.write(payload);
    try {
      String id;
      if ("http".equals(via)) {
        id = client.notifyPushId(pushId, json);
      } else if ("jms".equals(via) && jms != null) {
        id = jms.notifyPushId(pushId, json);
      } else {
        return new Answer(501, error("not_configured", "No notifier for \"" + via + "\"."));
      }
      return new Answer(200, "{\"id\":" + Json.quote(id) + "}");
    } catch (EpushException failed) {
      int status = "invalid_argument".equals(failed.code()) ? 400 : 502;
      return new Answer(status, error(failed.code(), String.valueOf(failed.getMessage())));
    }
  }

  private static String error(String code, String message) {
    return "{\"error\":{\"code\":" + Json.quote(code) + ",\"message\":" + Json.quote(message) + "}}";
  }

  private static String setting(String name) {
    String value = System.getenv(name);
    if (value == null || value.isEmpty()) {
      throw new IllegalStateException("The sample needs the environment variable " + name);
    }
    return value;
  }
}
