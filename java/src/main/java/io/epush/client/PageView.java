package io.epush.client;

import java.util.List;

/**
 * One page view's push ID, with its listen token when the server mints tokens: what a page needs
 * to listen. Made by {@link #open(EpushClient, List)} or the servlet helpers. Immutable.
 */
public final class PageView {
  /** The request attribute under which the servlet helpers keep the current view. */
  public static final String REQUEST_ATTRIBUTE = "io.epush.client.PageView";

  private final String pushId;
  private final String listenToken;
  private final List<String> groups;

  /**
   * A view of an existing push ID (for a page that keeps its push ID across reloads).
   *
   * @param pushId the push ID
   * @param listenToken its listen token, or null when the server needs none
   * @param groups the groups it is a member of
   */
  public PageView(String pushId, String listenToken, List<String> groups) {
    this.pushId = EpushNames.pushId(pushId);
    this.listenToken = listenToken;
    this.groups = List.copyOf(groups);
  }

  /**
   * Mints a push ID (with its listen token, if the server mints them) and adds it to {@code
   * groups}.
   *
   * @param client the client
   * @param groups groups the view joins, possibly none
   * @return the view
   */
  public static PageView open(EpushClient client, List<String> groups) {
    for (String group : groups) EpushNames.group(group);
    PushIdsWithTokens minted = client.createPushIdsWithTokens(1);
    String pushId = minted.pushIds().get(0);
    for (String group : groups) client.addMember(group, pushId);
    List<String> tokens = minted.listenTokens();
    return new PageView(pushId, tokens == null ? null : tokens.get(0), groups);
  }

  /**
   * The view's push ID.
   *
   * @return the push ID
   */
  public String pushId() {
    return pushId;
  }

  /**
   * The push ID's listen token.
   *
   * @return the token, or null when the server mints none
   */
  public String listenToken() {
    return listenToken;
  }

  /**
   * The groups the view joined.
   *
   * @return an unmodifiable list
   */
  public List<String> groups() {
    return groups;
  }

  /**
   * The HTML that loads the browser client and listens on this view's push ID, calling the
   * global function {@code callback} with each notification.
   *
   * @param callback a global function name, dotted names allowed ({@code app.onPush})
   * @return a {@link PageScript} to adjust (push server URL, script URL, CSP nonce) or render
   */
  public PageScript script(String callback) {
    return new PageScript(this, callback, "", "/epush.js", null);
  }
}
