package io.epush.client;

import java.util.regex.Pattern;

/**
 * The {@code <script>} elements a page writes to listen on a {@link PageView}: the browser client
 * ({@code /epush.js}, global {@code EPush}) and a call of {@code EPush.connect(...).listen(...)}.
 * Every value written into the script is a JSON string literal with {@code <}, {@code >} and
 * {@code &} escaped, so it cannot end the element. Immutable; each {@code with} method returns a
 * copy.
 */
public final class PageScript {
  private static final Pattern CALLBACK =
      Pattern.compile("[A-Za-z_$][A-Za-z0-9_$]*(\\.[A-Za-z_$][A-Za-z0-9_$]*)*");
  private static final Pattern NONCE = Pattern.compile("[A-Za-z0-9+/=_-]{1,200}");

  private final PageView view;
  private final String callback;
  private final String pushUrl;
  private final String scriptUrl;
  private final String nonce;
  private final String statusCallback;

  PageScript(PageView view, String callback, String pushUrl, String scriptUrl, String nonce) {
    this(view, callback, pushUrl, scriptUrl, nonce, null);
  }

  private PageScript(
      PageView view,
      String callback,
      String pushUrl,
      String scriptUrl,
      String nonce,
      String statusCallback) {
    if (callback == null || !CALLBACK.matcher(callback).matches()) {
      throw EpushException.invalidArgument(
          "The callback is a global function name such as onPush or app.onPush.");
    }
    if (statusCallback != null && !CALLBACK.matcher(statusCallback).matches()) {
      throw EpushException.invalidArgument(
          "The status callback is a global function name such as onPushStatus.");
    }
    if (nonce != null && !NONCE.matcher(nonce).matches()) {
      throw EpushException.invalidArgument("A CSP nonce is base64 text.");
    }
    this.view = view;
    this.callback = callback;
    this.pushUrl = pushUrl;
    this.scriptUrl = scriptUrl;
    this.nonce = nonce;
    this.statusCallback = statusCallback;
  }

  /**
   * Where browsers reach the push server. Default {@code ""}: the page's own origin, as when a
   * reverse proxy routes {@code /push/} and {@code /epush.js} to epush.
   *
   * @param url an absolute URL or one relative to the page
   * @return a copy with that URL
   */
  public PageScript withPushUrl(String url) {
    return new PageScript(view, callback, url == null ? "" : url, scriptUrl, nonce, statusCallback);
  }

  /**
   * Where the browser client script is loaded from. Default {@code /epush.js}.
   *
   * @param url the script's URL
   * @return a copy with that URL
   */
  public PageScript withScriptUrl(String url) {
    return new PageScript(view, callback, pushUrl, url, nonce, statusCallback);
  }

  /**
   * A Content-Security-Policy nonce for both elements.
   *
   * @param nonce the request's nonce, or null for none
   * @return a copy with that nonce
   */
  public PageScript withNonce(String nonce) {
    return new PageScript(view, callback, pushUrl, scriptUrl, nonce, statusCallback);
  }

  /**
   * A global function called with the shared connection's status ({@code connecting}, {@code
   * connected}, {@code reconnecting}, {@code offline}), e.g. to show it on the page.
   *
   * @param callback a global function name, dotted names allowed, or null for none
   * @return a copy with that callback
   */
  public PageScript withStatusCallback(String callback) {
    return new PageScript(view, this.callback, pushUrl, scriptUrl, nonce, callback);
  }

  /**
   * Renders the two elements.
   *
   * @return HTML to write into the page, after the callback is defined
   */
  public String html() {
    String nonceAttribute = nonce == null ? "" : " nonce=\"" + nonce + "\"";
    StringBuilder out = new StringBuilder();
    out.append("<script").append(nonceAttribute).append(" src=\"")
        .append(attribute(scriptUrl)).append("\"></script>\n");
    out.append("<script").append(nonceAttribute).append(">\n");
    out.append("(function () {\n");
    // An empty push URL means the page's own origin (a reverse proxy routes /push/ to epush).
    String url = pushUrl.isEmpty() ? "location.origin" : Json.quote(pushUrl);
    out.append("  var push = EPush.connect({ url: ").append(url).append(" });\n");
    if (statusCallback != null) {
      out.append("  push.on(\"status\", function (status) { ")
          .append(statusCallback).append("(status); });\n");
    }
    out.append("  push.listen(").append(Json.quote(view.pushId()))
        .append(", function (notification) { ").append(callback).append("(notification); }");
    if (view.listenToken() != null) {
      out.append(", { listenToken: ").append(Json.quote(view.listenToken())).append(" }");
    }
    out.append(");\n");
    out.append("})();\n");
    out.append("</script>\n");
    return out.toString();
  }

  @Override
  public String toString() {
    return html();
  }

  private static String attribute(String text) {
    return text.replace("&", "&amp;").replace("\"", "&quot;").replace("<", "&lt;").replace(">", "&gt;");
  }
}
