package io.epush.sample.javax;

import io.epush.client.EpushException;
import io.epush.client.PageView;
import io.epush.client.servlet.javax.EpushPageViews;
import io.epush.sample.SampleApp;
import javax.servlet.http.HttpServlet;
import javax.servlet.http.HttpServletRequest;
import javax.servlet.http.HttpServletResponse;
import java.io.IOException;

/** {@code GET /}: a page view with its own push ID, listening through {@code /epush.js}. */
public final class PageServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;

  @Override
  protected void doGet(HttpServletRequest request, HttpServletResponse response) throws IOException {
    SampleApp app = SampleApp.get();
    PageView view;
    try {
      view = new EpushPageViews(app.client()).open(request, "sample.pages");
    } catch (EpushException unavailable) {
      // No push ID, no live page: say so instead of a stack trace.
      response.sendError(503, "The push server cannot be reached: " + unavailable.code());
      return;
    }
    response.setContentType("text/html;charset=UTF-8");
    response.setHeader("Cache-Control", "no-store");
    response.getWriter().write(app.page(view));
  }

  @Override
  public void destroy() {
    SampleApp.shutdown();
  }
}
