import { describe, expect, test } from "bun:test";
import { clientAddress } from "../../src/http/client-address";

describe("client address behind proxies", () => {
  const trusted = ["10.0.0.0/8", "::1"];
  test("the peer is the client unless it is a trusted proxy", () => {
    expect(clientAddress("203.0.113.9", "1.2.3.4", trusted)).toBe("203.0.113.9");
    expect(clientAddress("10.1.1.1", null, trusted)).toBe("10.1.1.1");
    expect(clientAddress("10.1.1.1", "1.2.3.4", [])).toBe("10.1.1.1");
  });
  test("X-Forwarded-For is read from the right, past trusted hops", () => {
    expect(clientAddress("10.1.1.1", "1.2.3.4", trusted)).toBe("1.2.3.4");
    expect(clientAddress("::1", "6.6.6.6, 1.2.3.4, 10.2.2.2", trusted)).toBe("1.2.3.4");
    expect(clientAddress("10.1.1.1", "10.3.3.3, 10.2.2.2", trusted)).toBe("10.3.3.3");
    expect(clientAddress("::ffff:10.1.1.1", "2001:db8::1", trusted)).toBe("2001:db8::1");
  });
  test("garbage in the header ends the chain", () => {
    expect(clientAddress("10.1.1.1", "1.2.3.4, nonsense", trusted)).toBe("10.1.1.1");
    expect(clientAddress("10.1.1.1", "nonsense, 1.2.3.4", trusted)).toBe("1.2.3.4");
  });
});
