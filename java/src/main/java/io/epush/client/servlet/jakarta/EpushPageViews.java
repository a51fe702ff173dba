package io.epush.client.servlet.jakarta;

import io.epush.client.EpushClient;
import io.epush.client.EpushException;
import io.epush.client.PageView;
import jakarta.servlet.http.HttpServletRequest;
import java.util.Arrays;

/**
 * Gives each page view its own push ID, for servlets and JSPs on the {@code jakarta.servlet} API
 * (Tomcat 10+, Jetty 11+, WildFly 27+, GlassFish 7+, Open Liberty).
 *
 * <pre>{@code
 * PageView view = views.open(request, "orders");           // mints, joins "orders"
 * out.write(view.script("app.onPush").html());             // <script> tags that listen
 * }</pre>
 *
 * <p>The view is kept in the request attribute {@link PageView#REQUEST_ATTRIBUTE}, so a JSP
 * included later in the same request finds it with {@link #current(HttpServletRequest)}.
 * Thread-safe (it holds only the shared {@link EpushClient}).
 */
public final class EpushPageViews {
  private final EpushClient client;

  /**
   * Page views minted through {@code client}.
   *
   * @param client the application's client of the epush cluster
   */
  public EpushPageViews(EpushClient client) {
    if (client == null) throw EpushException.invalidArgument("The client is null.");
    this.client = client;
  }

  /**
   * Mints a push ID for this page view (with its listen token when the server mints them), adds
   * it to {@code groups}, and keeps the view in the request.
   *
   * @param request the page's request
   * @param groups groups the view joins, possibly none
   * @return the view
   */
  public PageView open(HttpServletRequest request, String... groups) {
    PageView view = PageView.open(client, Arrays.asList(groups));
    request.setAttribute(PageView.REQUEST_ATTRIBUTE, view);
    return view;
  }

  /**
   * The view {@link #open} made earlier in this request.
   *
   * @param request the page's request
   * @return the view, or null when none was opened
   */
  public static PageView current(HttpServletRequest request) {
    Object view = request.getAttribute(PageView.REQUEST_ATTRIBUTE);
    return view instanceof PageView ? (PageView) view : null;
  }
}
