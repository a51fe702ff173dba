package io.epush.client;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small JSON reader and writer, enough for the epush API: no dependency beyond the JDK.
 *
 * <p>Values map to Java as follows: object to {@code Map<String, Object>} (insertion-ordered,
 * unmodifiable), array to {@code List<Object>} (unmodifiable), string to {@link String}, number to
 * {@link Long} when it is an integer that fits, else {@link BigInteger} or {@link BigDecimal}
 * (exact, never a lossy double), {@code true}/{@code false} to {@link Boolean}, and {@code null}
 * to Java {@code null}. The class is stateless and thread-safe.
 */
public final class Json {
  /** Deeper nesting is refused: it guards the recursive reader against a stack overflow. */
  public static final int MAX_DEPTH = 256;

  private Json() {}

  /**
   * Parses one JSON text (RFC 8259; surrounding whitespace allowed).
   *
   * @param text the JSON text
   * @return the value, as described in the class comment
   * @throws IllegalArgumentException when the text is not JSON, or nests deeper than {@link
   *     #MAX_DEPTH}
   */
  public static Object parse(String text) {
    if (text == null) throw new IllegalArgumentException("JSON text is null");
    Reader reader = new Reader(text);
    reader.skipWhitespace();
    Object value = reader.value(0);
    reader.skipWhitespace();
    if (reader.pos != text.length()) throw reader.error("unexpected text after the value");
    return value;
  }

  /**
   * Re-serializes a JSON text compactly (no insignificant whitespace), e.g. to measure it the
   * way the server does.
   *
   * @param text the JSON text
   * @return the same value as compact JSON
   * @throws IllegalArgumentException when the text is not JSON
   */
  public static String compact(String text) {
    return write(parse(text));
  }

  /**
   * Serializes a value compactly. Accepts what {@link #parse} returns, plus any {@link Map} with
   * string keys, {@link Iterable}, {@link CharSequence}, {@link Number} and {@link Boolean}.
   *
   * @param value the value
   * @return compact JSON text
   * @throws IllegalArgumentException for another type, a non-finite number, or a map key that is
   *     not a string
   */
  public static String write(Object value) {
    StringBuilder out = new StringBuilder();
    write(out, value, 0);
    return out.toString();
  }

  /**
   * A JSON string literal for {@code text}, with quotes. {@code <}, {@code >}, {@code &}, U+2028
   * and U+2029 are escaped too, so the literal is safe inside an HTML {@code <script>} element.
   *
   * @param text the string
   * @return the quoted, escaped literal
   */
  public static String quote(String text) {
    StringBuilder out = new StringBuilder(text.length() + 2);
    quote(out, text, true);
    return out.toString();
  }

  private static void write(StringBuilder out, Object value, int depth) {
    if (depth > MAX_DEPTH) throw new IllegalArgumentException("value nests too deeply");
    if (value == null) {
      out.append("null");
    } else if (value instanceof CharSequence) {
      quote(out, value.toString(), false);
    } else if (value instanceof Boolean) {
      out.append(value.toString());
    } else if (value instanceof Double || value instanceof Float) {
      double d = ((Number) value).doubleValue();
      if (Double.isNaN(d) || Double.isInfinite(d)) {
        throw new IllegalArgumentException("JSON has no NaN or infinity");
      }
      out.append(BigDecimal.valueOf(d).stripTrailingZeros().toString());
    } else if (value instanceof BigDecimal) {
      out.append(((BigDecimal) value).toString());
    } else if (value instanceof Number) {
      out.append(value.toString());
    } else if (value instanceof Map) {
      out.append('{');
      boolean first = true;
      for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
        if (!(entry.getKey() instanceof String)) {
          throw new IllegalArgumentException("JSON object keys are strings");
        }
        if (!first) out.append(',');
        first = false;
        quote(out, (String) entry.getKey(), false);
        out.append(':');
        write(out, entry.getValue(), depth + 1);
      }
      out.append('}');
    } else if (value instanceof Iterable) {
      out.append('[');
      Iterator<?> items = ((Iterable<?>) value).iterator();
      while (items.hasNext()) {
        write(out, items.next(), depth + 1);
        if (items.hasNext()) out.append(',');
      }
      out.append(']');
    } else {
      throw new IllegalArgumentException("not a JSON value: " + value.getClass().getName());
    }
  }

  /** Escapes as JSON.stringify does; {@code htmlSafe} also escapes what could end a script. */
  private static void quote(StringBuilder out, String text, boolean htmlSafe) {
    out.append('"');
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      switch (c) {
        case '"':
          out.append("\\\"");
          break;
        case '\\':
          out.append("\\\\");
          break;
        case '\n':
          out.append("\\n");
          break;
        case '\r':
          out.append("\\r");
          break;
        case '\t':
          out.append("\\t");
          break;
        case '\b':
          out.append("\\b");
          break;
        case '\f':
          out.append("\\f");
          break;
        default:
          boolean html =
              c == '<' || c == '>' || c == '&' || c == '\u2028' || c == '\u2029';
          if (c < 0x20 || (htmlSafe && html)) {
            out.append(String.format("\\u%04x", (int) c));
          } else {
            out.append(c);
          }
      }
    }
    out.append('"');
  }

  /** A recursive-descent reader over one text. */
  private static final class Reader {
    private final String text;
    int pos;

    Reader(String text) {
      this.text = text;
    }

    IllegalArgumentException error(String why) {
      return new IllegalArgumentException("invalid JSON at offset " + pos + ": " + why);
    }

    void skipWhitespace() {
      while (pos < text.length()) {
        char c = text.charAt(pos);
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
        pos++;
      }
    }

    Object value(int depth) {
      if (depth > MAX_DEPTH) throw error("nests deeper than " + MAX_DEPTH);
      if (pos >= text.length()) throw error("a value is missing");
      char c = text.charAt(pos);
      switch (c) {
        case '{':
          return object(depth);
        case '[':
          return array(depth);
        case '"':
          return string();
        case 't':
          return literal("true", Boolean.TRUE);
        case 'f':
          return literal("false", Boolean.FALSE);
        case 'n':
          return literal("null", null);
        default:
          if (c == '-' || (c >= '0' && c <= '9')) return number();
          throw error("unexpected character '" + c + "'");
      }
    }

    private Object literal(String word, Object value) {
      if (!text.startsWith(word, pos)) throw error("expected " + word);
      pos += word.length();
      return value;
    }

    private Map<String, Object> object(int depth) {
      pos++;
      Map<String, Object> map = new LinkedHashMap<>();
      skipWhitespace();
      if (peek() == '}') {
        pos++;
        return Collections.unmodifiableMap(map);
      }
      while (true) {
        skipWhitespace();
        if (peek() != '"') throw error("expected a string key");
        String key = string();
        skipWhitespace();
        if (peek() != ':') throw error("expected ':'");
        pos++;
        skipWhitespace();
        map.put(key, value(depth + 1));
        skipWhitespace();
        char c = peek();
        pos++;
        if (c == '}') return Collections.unmodifiableMap(map);
        if (c != ',') throw error("expected ',' or '}'");
      }
    }

    private List<Object> array(int depth) {
      pos++;
      List<Object> list = new ArrayList<>();
      skipWhitespace();
      if (peek() == ']') {
        pos++;
        return Collections.unmodifiableList(list);
      }
      while (true) {
        skipWhitespace();
        list.add(value(depth + 1));
        skipWhitespace();
        char c = peek();
        pos++;
        if (c == ']') return Collections.unmodifiableList(list);
        if (c != ',') throw error("expected ',' or ']'");
      }
    }

    private char peek() {
      if (pos >= text.length()) throw error("unexpected end");
      return text.charAt(pos);
    }

    private String string() {
      pos++;
      StringBuilder out = new StringBuilder();
      while (true) {
        char c = peek();
        pos++;
        if (c == '"') return out.toString();
        if (c < 0x20) throw error("control character in a string");
        if (c != '\\') {
          out.append(c);
          continue;
        }
        char e = peek();
        pos++;
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out.append(e);
            break;
          case 'b':
            out.append('\b');
            break;
          case 'f':
            out.append('\f');
            break;
          case 'n':
            out.append('\n');
            break;
          case 'r':
            out.append('\r');
            break;
          case 't':
            out.append('\t');
            break;
          case 'u':
            if (pos + 4 > text.length()) throw error("short \\u escape");
            try {
              out.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
            } catch (NumberFormatException bad) {
              throw error("bad \\u escape");
            }
            pos += 4;
            break;
          default:
            throw error("bad escape \\" + e);
        }
      }
    }

    private Number number() {
      int start = pos;
      if (text.charAt(pos) == '-') pos++;
      if (pos < text.length() && text.charAt(pos) == '0') {
        pos++;
      } else if (!digits()) {
        throw error("expected digits");
      }
      boolean integral = true;
      if (pos < text.length() && text.charAt(pos) == '.') {
        pos++;
        integral = false;
        if (!digits()) throw error("expected digits after '.'");
      }
      if (pos < text.length() && (text.charAt(pos) == 'e' || text.charAt(pos) == 'E')) {
        pos++;
        integral = false;
        if (pos < text.length() && (text.charAt(pos) == '+' || text.charAt(pos) == '-')) pos++;
        if (!digits()) throw error("expected digits in the exponent");
      }
      String lexeme = text.substring(start, pos);
      if (!integral) return new BigDecimal(lexeme);
      BigInteger big = new BigInteger(lexeme);
      return big.bitLength() < 64 ? (Number) big.longValue() : big;
    }

    private boolean digits() {
      int start = pos;
      while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') pos++;
      return pos > start;
    }
  }
}
