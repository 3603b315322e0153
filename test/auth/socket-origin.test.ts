/**
 * The WebSocket upgrade against cross-site hijacking: with the session cookie as the credential, only
 * this server's origin and ALLOWED_ORIGINS may open it (403 before any upgrade otherwise); header and
 * query credentials, which a browser never sends by itself, work from anywhere. Also: `/api/ws/` is
 * `/api/ws`, and a path no route serves is 404 with or without credentials.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";

setDefaultTimeout(60_000);

let t: TestServer;
let user: TestPrincipal;
let agent: TestPrincipal;
beforeAll(async () => {
  t = await startTestServer({ ALLOWED_ORIGINS: "https://app.example.test, http://localhost:3000" });
  user = await t.principal();
  agent = await t.principal({ type: "agent" });
});
afterAll(() => t.stop());

/** Sends an upgrade request by hand and returns the status of the answer (101 or a refusal). */
async function upgradeStatus(path: string, headers: Record<string, string>): Promise<number> {
  const { hostname, port } = new URL(t.url);
  let received = "";
  let done!: (status: number) => void;
  const status = new Promise<number>((resolve) => (done = resolve));
  const socket = await Bun.connect({
    hostname,
    port: Number(port),
    socket: {
      data(_socket, chunk) {
        received += chunk.toString();
        const match = /^HTTP\/1\.1 (\d{3})/.exec(received);
        if (match) done(Number(match[1]));
      },
      close() {
        done(0);
      },
    },
  });
  const lines = [
    `GET ${path} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Connection: Upgrade",
    "Upgrade: websocket",
    "Sec-WebSocket-Version: 13",
    `Sec-WebSocket-Key: ${Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString("base64")}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
    "",
    "",
  ];
  socket.write(lines.join("\r\n"));
  const result = await Promise.race([status, Bun.sleep(10_000).then(() => -1)]);
  socket.end();
  return result;
}

describe("WebSocket upgrade and Origin", () => {
  const cookie = () => ({ Cookie: `symbia_session=${user.token}` });
  const own = () => `http://${new URL(t.url).host}`;

  test("cookie from the server's own origin is upgraded", async () => {
    expect(await upgradeStatus("/api/ws", { ...cookie(), Origin: own() })).toBe(101);
  });

  test("cookie from an allowed origin is upgraded", async () => {
    expect(await upgradeStatus("/api/ws", { ...cookie(), Origin: "https://app.example.test" })).toBe(101);
    expect(await upgradeStatus("/api/ws", { ...cookie(), Origin: "http://LOCALHOST:3000" })).toBe(101);
  });

  test("cookie from any other origin is refused with 403 before the upgrade", async () => {
    for (const origin of ["https://evil.example", "null", "http://localhost:3001", `https://${new URL(t.url).host}.evil.example`]) {
      expect([origin, await upgradeStatus("/api/ws", { ...cookie(), Origin: origin })]).toEqual([origin, 403]);
    }
    // The trailing-slash path is the same endpoint, and gated the same.
    expect(await upgradeStatus("/api/ws/", { ...cookie(), Origin: "https://evil.example" })).toBe(403);
  });

  test("the refusal is JSON {error, code}", async () => {
    const res = await fetch(t.url + "/api/ws", { headers: { ...cookie(), Origin: "https://evil.example" } });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: expect.any(String), code: "origin_forbidden" });
  });

  test("header and query credentials are unaffected by Origin", async () => {
    const evil = { Origin: "https://evil.example" };
    expect(await upgradeStatus("/api/ws", { ...evil, Authorization: `Bearer ${user.token}` })).toBe(101);
    expect(await upgradeStatus("/api/ws", { ...evil, "X-API-Key": agent.token })).toBe(101);
    expect(await upgradeStatus(`/api/ws?token=${encodeURIComponent(user.token)}`, evil)).toBe(101);
    expect(await upgradeStatus(`/api/ws?apiKey=${encodeURIComponent(agent.token)}`, { ...evil, ...cookie() })).toBe(101);
  });

  test("a client that sends no Origin (not a browser) may use the cookie", async () => {
    expect(await upgradeStatus("/api/ws", cookie())).toBe(101);
  });

  test("/api/ws/ with ?token= works like /api/ws", async () => {
    expect(await upgradeStatus(`/api/ws/?token=${encodeURIComponent(user.token)}`, {})).toBe(101);
    expect(await upgradeStatus("/api/ws/", {})).toBe(401);
    expect(await upgradeStatus("/api/ws/?token=nonsense", {})).toBe(401);
  });
});

describe("unknown routes", () => {
  test("are 404 with or without credentials", async () => {
    for (const [method, path] of [["GET", "/api/nope"], ["GET", "/api/conversations/x/y/z"], ["PUT", "/api/conversations"], ["POST", "/api/health"], ["GET", "/nope"]]) {
      for (const as of [undefined, user]) {
        const res = await t.request(method, path, { as });
        expect([method, path, as ? "auth" : "anon", res.status, res.body]).toEqual([method, path, as ? "auth" : "anon", 404, { error: "Route not found", code: "not_found" }]);
      }
    }
  });

  test("a real route without credentials is still 401", async () => {
    expect((await t.request("GET", "/api/conversations")).status).toBe(401);
    expect((await t.request("GET", "/api/conversations/not-a-uuid/messages?limit=-1")).status).toBe(401);
  });
});
