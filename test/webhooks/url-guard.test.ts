/**
 * The address guard on IPv6 forms that carry or reach other addresses, what a delivery makes of a host
 * that does not resolve, and the connection going to the address checked rather than to a new answer.
 */
import { afterEach, describe, expect, mock, spyOn, test } from "bun:test";
import * as dns from "node:dns/promises";
import { attemptDelivery, deliverAttempt, type AttemptRequest } from "../../src/webhooks/attempt";
import { newWebhookSecret } from "../../src/webhooks/signing";
import { checkWebhookUrl, forgetResolvedNames, isBlockedAddress } from "../../src/webhooks/url-guard";

afterEach(() => {
  mock.restore();
  forgetResolvedNames();
});

function attempt(url: string): AttemptRequest {
  return { url, deliveryId: "msg_guard", body: '{"type":"test"}', secrets: [newWebhookSecret()], timeoutMs: 2000, allowPrivate: false };
}

/** What fetch was asked, answered with 204 without touching the network. */
function captureFetch(): { calls: { url: string; init: BunFetchRequestInit }[] } {
  const seen = { calls: [] as { url: string; init: BunFetchRequestInit }[] };
  spyOn(globalThis, "fetch").mockImplementation((async (url: string | URL | Request, init?: BunFetchRequestInit) => {
    seen.calls.push({ url: String(url), init: init ?? {} });
    return new Response(null, { status: 204 });
  }) as typeof fetch);
  return seen;
}

describe("isBlockedAddress", () => {
  const refused: [string, string[]][] = [
    ["unspecified and loopback, written out", ["0:0:0:0:0:0:0:0", "0000:0000:0000:0000:0000:0000:0000:0001"]],
    ["IPv4-mapped, in hex and dotted", ["::ffff:7f00:1", "::ffff:a9fe:a9fe", "::ffff:a00:1", "0:0:0:0:0:ffff:c0a8:101", "::FFFF:127.0.0.1"]],
    ["IPv4-translated", ["::ffff:0:7f00:1", "::ffff:0:169.254.169.254"]],
    ["IPv4-compatible", ["::127.0.0.1", "::a00:1", "::a9fe:a9fe"]],
    ["NAT64, even of a public address, and local-use NAT64", ["64:ff9b::808:808", "64:ff9b::127.0.0.1", "64:ff9b:1::1", "64:ff9b:1:ffff::1"]],
    ["6to4 of a refused IPv4 address, and the 6to4 relay", ["2002:7f00:1::", "2002:a9fe:a9fe::1", "2002:c0a8:101::1", "2002:a00:1:1::1", "192.88.99.1"]],
    ["Teredo", ["2001::1", "2001:0:4136:e378:8000:63bf:3fff:fdd2"]],
    ["documentation", ["2001:db8::1", "2001:db8:ffff::", "192.0.2.5", "198.51.100.7", "203.0.113.9"]],
    ["IETF protocol assignments", ["192.0.0.8", "::ffff:192.0.0.170"]],
    ["discard", ["100::", "100::ffff:ffff:ffff:ffff"]],
    ["unique local", ["fc00::", "fd12:3456::1"]],
    ["link-local and site-local", ["febf::1", "fec0::1", "feff:ffff::1"]],
    ["multicast", ["ff0e::1", "ff05::2"]],
    ["anything that does not parse", ["", "example.com", "fe80::1%eth0", "1::2::3", "12345::1", "::ffff:1.2.3", "1:2:3:4:5:6:7:8:9", ":1::"]],
  ];
  test.each(refused)("%s: refused", (_, addresses) => {
    for (const address of addresses) expect([address, isBlockedAddress(address)]).toEqual([address, true]);
  });

  test("public addresses pass, in each family and in each embedding form", () => {
    for (const address of [
      "8.8.8.8", "192.0.32.10", "192.88.98.1", "198.51.101.1", "203.0.114.1",
      "2606:4700::1111", "2a00:1450:4001:82a::200e", "2001:4860:4860::8888",
      "2002:808:808::1", "2002:0808:0808::1", "::ffff:808:808", "::ffff:0:808:808",
    ]) {
      expect([address, isBlockedAddress(address)]).toEqual([address, false]);
    }
  });
});

describe("checkWebhookUrl", () => {
  test("IPv6 literals that reach loopback, metadata or private IPv4 addresses are refused, as URL serialises them", async () => {
    // The WHATWG URL parser writes the dotted form of a mapped address in hex.
    expect(new URL("http://[::ffff:127.0.0.1]/").hostname).toBe("[::ffff:7f00:1]");
    for (const url of ["http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:a9fe:a9fe]/", "http://[2002:7f00:1::]/", "http://[64:ff9b::a00:1]/"]) {
      await expect(checkWebhookUrl(url, false)).rejects.toMatchObject({ code: "webhook_url_forbidden" });
    }
  });
});

describe("attemptDelivery", () => {
  test("a host that does not resolve now is retried, not disabled", async () => {
    const outcome = await attemptDelivery(attempt("http://does-not-exist.invalid/hook"));
    expect(outcome).toMatchObject({ kind: "retry", error: expect.stringContaining("does not resolve") });
  });

  test("a host that resolves to a refused address disables the endpoint", async () => {
    expect(await attemptDelivery(attempt("http://localhost:9/hook"))).toMatchObject({ kind: "disable" });
  });

  test("the connection goes to the address checked: a second answer for the name is never asked for", async () => {
    const answers = [[{ address: "93.184.216.34", family: 4 }], [{ address: "127.0.0.1", family: 4 }]];
    const lookup = spyOn(dns, "lookup").mockImplementation((async () => answers.shift()) as unknown as typeof dns.lookup);
    const seen = captureFetch();
    expect(await attemptDelivery(attempt("http://hooks.example:8080/in?x=1"))).toEqual({ kind: "delivered", status: 204 });
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(seen.calls.map((call) => call.url)).toEqual(["http://93.184.216.34:8080/in?x=1"]);
    expect((seen.calls[0].init.headers as Record<string, string>).host).toBe("hooks.example:8080");
  });

  test("deliveries reuse a name's answer (one lookup for many attempts at once); registration asks again", async () => {
    const lookup = spyOn(dns, "lookup").mockImplementation((async () => {
      await Bun.sleep(20);
      return [{ address: "93.184.216.34", family: 4 }];
    }) as unknown as typeof dns.lookup);
    const seen = captureFetch();
    const outcomes = await Promise.all([1, 2, 3].map(() => attemptDelivery(attempt("http://hooks.example/in"))));
    expect(outcomes.map((o) => o.kind)).toEqual(["delivered", "delivered", "delivered"]);
    await attemptDelivery(attempt("http://hooks.example/in"));
    expect(lookup).toHaveBeenCalledTimes(1);
    expect(seen.calls.map((call) => call.url)).toEqual(Array(4).fill("http://93.184.216.34/in"));
    await checkWebhookUrl("http://hooks.example/in", false);
    expect(lookup).toHaveBeenCalledTimes(2);
  });

  test("a failed lookup is not reused, and one slower than the timeout is retried", async () => {
    let calls = 0;
    spyOn(dns, "lookup").mockImplementation((async () => {
      calls++;
      if (calls === 1) throw Object.assign(new Error("temporary failure"), { code: "EAI_AGAIN" });
      if (calls === 2) await Bun.sleep(500);
      return [{ address: "93.184.216.34", family: 4 }];
    }) as unknown as typeof dns.lookup);
    captureFetch();
    expect(await attemptDelivery(attempt("http://slow.example/in"))).toMatchObject({ kind: "retry", error: expect.stringContaining("EAI_AGAIN") });
    expect(await attemptDelivery({ ...attempt("http://slow.example/in"), timeoutMs: 100 })).toMatchObject({ kind: "retry", error: expect.stringContaining("within 100 ms") });
    await Bun.sleep(500);
    // The slow answer came after all, and is the one reused.
    expect(await attemptDelivery(attempt("http://slow.example/in"))).toMatchObject({ kind: "delivered" });
    expect(calls).toBe(2);
  });

  test("with private addresses allowed, nothing is resolved and fetch gets the URL as it is", async () => {
    const lookup = spyOn(dns, "lookup");
    const seen = captureFetch();
    expect(await attemptDelivery({ ...attempt("http://hooks.example/in"), allowPrivate: true })).toMatchObject({ kind: "delivered" });
    expect(lookup).not.toHaveBeenCalled();
    expect(seen.calls.map((call) => call.url)).toEqual(["http://hooks.example/in"]);
  });
});

describe("deliverAttempt to checked addresses", () => {
  test("the receiver at the address sees the original Host, path and query", async () => {
    const received: { host: string | null; path: string; id: string | null }[] = [];
    const server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const url = new URL(req.url);
        received.push({ host: req.headers.get("host"), path: url.pathname + url.search, id: req.headers.get("webhook-id") });
        return new Response(null, { status: 204 });
      },
    });
    try {
      const outcome = await deliverAttempt(attempt(`http://hooks.example:${server.port}/in?x=1`), ["127.0.0.1"]);
      expect(outcome).toEqual({ kind: "delivered", status: 204 });
      expect(received).toEqual([{ host: `hooks.example:${server.port}`, path: "/in?x=1", id: "msg_guard" }]);
    } finally {
      server.stop(true);
    }
  });

  test("an address that refuses the connection gives way to the next one", async () => {
    let hits = 0;
    const server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => (hits++, new Response(null, { status: 204 })) });
    try {
      // Only 127.0.0.1 listens on this port: 127.0.0.2 (also loopback) refuses it.
      expect(await deliverAttempt(attempt(`http://hooks.example:${server.port}/`), ["127.0.0.2", "127.0.0.1"])).toMatchObject({ kind: "delivered" });
      expect(hits).toBe(1);
    } finally {
      server.stop(true);
    }
  });

  test("over TLS an IPv6 address goes in brackets, while SNI and the certificate check use the name", async () => {
    const seen = captureFetch();
    await deliverAttempt(attempt("https://hooks.example/in"), ["2606:4700::1111"]);
    const [{ url, init }] = seen.calls;
    expect(url).toBe("https://[2606:4700::1111]/in");
    expect((init.headers as Record<string, string>).host).toBe("hooks.example");
    // Bun verifies the certificate against serverName; no identity callback, which would cost keep-alive.
    expect(init.tls).toEqual({ serverName: "hooks.example" });
  });
});
