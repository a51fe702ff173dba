package io.epush.sample.jakarta;

import io.epush.sample.SampleApp;
import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import java.io.IOException;

/** {@code POST /notify} ({@code via}, {@code pushId}, {@code n}): notifies the page's push ID. */
public final class NotifyServlet extends HttpServlet {
  private static final long serialVersionUID = 1L;

  @Override
  protected void doPost(HttpServletRequest request, HttpServletResponse response) throws IOException {
    SampleApp.Answer answer =
        SampleApp.get()
            .notify(request.getParameter("via"), request.getParameter("pushId"), request.getParameter("n"));
    response.setStatus(answer.status);
    response.setContentType("application/json;charset=UTF-8");
    response.getWriter().write(answer.body);
  }
}
