/**
 * Security headers on every kind of answer (values, own Responses, gate refusals, mapped errors, the
 * docs), and request headers too large for the server answered as JSON where Bun lets the server answer.
 */
import { afterAll, beforeAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";

setDefaultTimeout(60_000);

let t: TestServer;
let user: TestPrincipal;
let conversation: string;
beforeAll(async () => {
  t = await startTestServer();
  user = await t.principal();
  conversation = (await t.request("POST", "/api/conversations", { as: user, body: { type: "group", name: "h" } })).body.id;
});
afterAll(() => t.stop());

describe("security headers", () => {
  test("on every kind of answer", async () => {
    const cases: [string, string, Record<string, string>, string?][] = [
      ["GET", "/api/health", {}],
      ["GET", "/api/conversations", user.headers],
      ["POST", `/api/conversations/${"{id}"}/messages`, { ...user.headers, "content-type": "application/json" }, JSON.stringify({ content: "hi" })],
      ["GET", "/api/conversations", {}],
      ["GET", "/api/conversations?limit=x", user.headers],
      ["GET", "/api/nope", {}],
      ["POST", "/api/auth/login", { "content-type": "application/json" }, JSON.stringify({ email: "a@b.c", password: "x" })],
      ["GET", "/docs", {}],
      ["GET", "/docs/openapi.json", {}],
      ["GET", "/docs/assets/swagger-ui.css", {}],
      ["GET", "/console", {}],
      ["GET", "/console/assets/nope.js", {}],
      ["GET", "/api/conversations", { ...user.headers, "x-env": "bogus" }],
    ];
    const missing: string[] = [];
    for (const [method, path, headers, body] of cases) {
      const res = await fetch(t.url + path.replace("{id}", conversation), { method, headers, body });
      await res.arrayBuffer();
      for (const [name, value] of [["x-content-type-options", "nosniff"], ["referrer-policy", "no-referrer"], ["x-frame-options", "DENY"]]) {
        if (res.headers.get(name) !== value) missing.push(`${method} ${path} (${res.status}): ${name}=${res.headers.get(name)}`);
      }
    }
    expect(missing).toEqual([]);
  });

  test("the HTML pages forbid framing in their CSP too", async () => {
    for (const path of ["/docs", "/console"]) {
      const res = await fetch(t.url + path);
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    }
  });
});

describe("request headers too large", () => {
  test("over the server's limit: 431 with {error, code}", async () => {
    const res = await fetch(t.url + "/api/health", { headers: { "x-padding": "a".repeat(13 * 1024) } });
    expect(res.status).toBe(431);
    expect(await res.json()).toEqual({ error: expect.any(String), code: "headers_too_large" });
  });

  test("ordinary headers pass", async () => {
    const res = await fetch(t.url + "/api/health", { headers: { "x-padding": "a".repeat(8 * 1024) } });
    expect(res.status).toBe(200);
  });
});
