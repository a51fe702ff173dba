package io.epush.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("PageView and PageScript, the page side of the servlet helpers")
class PageScriptTest {
  static final String PUSH_ID = "AAAAAAAAAAAAAAAAAAAAAA";

  @Test
  @DisplayName("the script loads /epush.js and listens on the view's push ID with its token")
  void rendersTheListen() {
    String html = new PageView(PUSH_ID, "v1.2.mac", List.of()).script("app.onPush").html();
    assertTrue(html.startsWith("<script src=\"/epush.js\"></script>\n<script>\n"), html);
    assertTrue(html.contains("EPush.connect({ url: location.origin })"), html);
    assertTrue(
        html.contains("push.listen(\"" + PUSH_ID + "\", function (notification) { app.onPush(notification); }, { listenToken: \"v1.2.mac\" });"),
        html);
  }

  @Test
  @DisplayName("URLs cannot break out of the script: they are escaped JSON literals and attributes")
  void escapesUrls() {
    String html =
        new PageView(PUSH_ID, null, List.of())
            .script("onPush")
            .withPushUrl("https://push.example/</script><script>alert(1)//")
            .withScriptUrl("/e.js\"><script>")
            .withNonce("abc123==")
            .withStatusCallback("onStatus")
            .html();
    assertFalse(html.contains("</script><script>alert"), html);
    assertTrue(html.contains("src=\"/e.js&quot;&gt;&lt;script&gt;\""), html);
    assertTrue(html.contains("<script nonce=\"abc123==\">"), html);
    assertTrue(html.contains("push.on(\"status\", function (status) { onStatus(status); });"), html);
    assertFalse(html.contains("listenToken"), "no token, no option");
  }

  @Test
  @DisplayName("a callback that is not a global function name is refused")
  void refusesBadCallbacks() {
    PageView view = new PageView(PUSH_ID, null, List.of());
    for (String bad : List.of("", "alert(1)", "a..b", "x;y", "1a")) {
      assertEquals("invalid_argument", assertThrows(EpushException.class, () -> view.script(bad)).code(), bad);
    }
    assertEquals("invalid_argument", assertThrows(EpushException.class, () -> new PageView("short", null, List.of())).code());
  }
}
