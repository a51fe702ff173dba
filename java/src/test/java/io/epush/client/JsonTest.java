package io.epush.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;

@DisplayName("Json, the client's own reader and writer")
class JsonTest {
  @Test
  @DisplayName("reads every JSON type and writes it back compactly")
  void roundTrip() {
    String text = " { \"a\" : [ 1 , -2.50 , 1e3 , true , false , null ] , \"s\" : \"x\\u00e9\\n\\\"\" } ";
    Object value = Json.parse(text);
    Map<?, ?> map = (Map<?, ?>) value;
    List<?> list = (List<?>) map.get("a");
    assertEquals(1L, list.get(0));
    assertEquals(new BigDecimal("-2.50"), list.get(1));
    assertNull(list.get(5));
    assertEquals("x\u00e9\n\"", map.get("s"));
    assertEquals("{\"a\":[1,-2.50,1E+3,true,false,null],\"s\":\"x\u00e9\\n\\\"\"}", Json.write(value));
  }

  @Test
  @DisplayName("keeps numbers exact: big integers and decimals never pass through a double")
  void exactNumbers() {
    assertEquals(new BigInteger("123456789012345678901234567890"), Json.parse("123456789012345678901234567890"));
    assertEquals("0.1000000000000000000001", Json.compact("0.1000000000000000000001"));
    assertEquals(Long.MAX_VALUE, Json.parse(Long.toString(Long.MAX_VALUE)));
  }

  @Test
  @DisplayName("refuses what is not JSON, with the offset")
  void refusesBadText() {
    for (String bad : List.of("", "{", "[1,]", "{\"a\"1}", "01", "1.", "tru", "\"\u0001\"", "\"\\x\"", "1 2", "NaN")) {
      IllegalArgumentException error = assertThrows(IllegalArgumentException.class, () -> Json.parse(bad), bad);
      assertTrue(error.getMessage().startsWith("invalid JSON"), error.getMessage());
    }
  }

  @Test
  @DisplayName("refuses nesting deeper than MAX_DEPTH instead of overflowing the stack")
  void depthLimit() {
    String deep = "[".repeat(Json.MAX_DEPTH + 2) + "]".repeat(Json.MAX_DEPTH + 2);
    assertThrows(IllegalArgumentException.class, () -> Json.parse(deep));
    String ok = "[".repeat(100) + "]".repeat(100);
    assertEquals(ok, Json.compact(ok));
  }

  @Test
  @DisplayName("quote() escapes what could end a script element; write() escapes as JSON.stringify")
  void htmlSafeQuote() {
    String quoted = Json.quote("</script><!-- & \u2028");
    assertFalse(quoted.contains("<") || quoted.contains(">") || quoted.contains("&"));
    assertEquals("</script><!-- & \u2028", Json.parse(quoted));
    assertEquals("\"<b>\"", Json.write("<b>"));
    assertEquals("\"\\b\\f\\u0001\"", Json.write("\b\f\u0001"));
  }

  @Test
  @DisplayName("EpushNames.payload measures the compact form, as the server does")
  void payloadSize() {
    String spaced = "[" + " 1,".repeat(30_000) + "1]";
    assertTrue(spaced.length() > EpushNames.MAX_PAYLOAD_BYTES);
    assertEquals("[" + "1,".repeat(30_000) + "1]", EpushNames.payload(spaced));
    assertNull(EpushNames.payload("  "));
    assertNull(EpushNames.payload(null));
  }
}
