/**
 * Remote identity (IDENTITY_URL) against a fake Identity service: login/logout pass through, tokens and
 * API keys are introspected, positive answers are cached, failures are not, and an unreachable service
 * is a 502 rather than a 401.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { FAKE_PASSWORD, startFakeIdentity, type FakeIdentity } from "../support/fake-identity";
import { freePort } from "../support/harness";
import { startTestServer, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let fake: FakeIdentity;
let t: TestServer;

beforeAll(async () => {
  fake = startFakeIdentity();
  t = await startTestServer({ IDENTITY_URL: fake.url, IDENTITY_CACHE_MS: "60000", IDENTITY_TIMEOUT_MS: "300" });
});
afterAll(async () => {
  await t?.stop();
  fake?.stop();
});
afterEach(() => {
  fake.mode = "ok";
});

const INTROSPECT = "/api/auth/introspect";
const VERIFY_KEY = "/api/auth/verify-api-key";
const newToken = () => `tok-${randomUUID()}`;

function userToken(overrides: Record<string, unknown> = {}): { token: string; sub: string } {
  const token = newToken();
  const sub = `user-${randomUUID().slice(0, 8)}`;
  fake.tokens.set(token, {
    active: true,
    sub,
    type: "user",
    email: `${sub}@example.test`,
    name: "Remote User",
    organizations: [{ id: "acme", role: "admin" }, { id: "beta", role: "member" }],
    entitlements: ["messaging:admin"],
    isSuperAdmin: false,
    ...overrides,
  });
  return { token, sub };
}

const me = (headers: Record<string, string>) => t.request("GET", "/api/auth/me", { headers });
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("login and logout are proxied", () => {
  test("login passes status, body and every Set-Cookie through", async () => {
    const ok = await t.request("POST", "/api/auth/login", { body: { email: "a@example.test", password: FAKE_PASSWORD }, headers: { "user-agent": "tests/1" } });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ token: "remote-session-token", user: { id: "u-remote", email: "a@example.test" } });
    expect(ok.headers.getSetCookie()).toEqual([
      "token=remote-session-token; Path=/; HttpOnly; SameSite=Lax",
      "identity_hint=1; Path=/",
    ]);
    expect(fake.lastHeaders.get("/api/auth/login")?.get("user-agent")).toBe("tests/1");
    expect(fake.lastHeaders.get("/api/auth/login")?.get("x-forwarded-for")).toBe("127.0.0.1");

    const bad = await t.request("POST", "/api/auth/login", { body: { email: "a@example.test", password: "nope" } });
    expect(bad.status).toBe(401);
    expect(bad.body).toEqual({ error: "Wrong email or password", code: "bad_login" });
  });

  test("failed logins are limited here too: past the limit, 429 with Retry-After and the Identity service is not asked", async () => {
    const email = `guess-${randomUUID().slice(0, 8)}@example.test`;
    for (let i = 0; i < 5; i++) {
      expect((await t.request("POST", "/api/auth/login", { body: { email, password: `guess ${i}` } })).status).toBe(401);
    }
    const asked = fake.count("/api/auth/login");
    const limited = await t.request("POST", "/api/auth/login", { body: { email: email.toUpperCase(), password: FAKE_PASSWORD } });
    expect(limited.status).toBe(429);
    expect(limited.body).toEqual({ error: expect.any(String), code: "rate_limited" });
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(fake.count("/api/auth/login")).toBe(asked);
    // Another account from the same address is not affected.
    expect((await t.request("POST", "/api/auth/login", { body: { email: "a@example.test", password: FAKE_PASSWORD } })).status).toBe(200);
  });

  test("logout forwards the caller's credential, passes the answer through and forgets the cached token", async () => {
    const { token } = userToken();
    expect((await me(bearer(token))).status).toBe(200);
    const calls = fake.count(INTROSPECT);
    const out = await t.request("POST", "/api/auth/logout", { headers: bearer(token) });
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ ok: true, by: "identity" });
    expect(out.headers.getSetCookie()).toEqual(["token=; Path=/; Max-Age=0"]);
    expect(fake.lastHeaders.get("/api/auth/logout")?.get("authorization")).toBe(`Bearer ${token}`);
    // The Identity service now says the token is dead, and this server asks again instead of trusting its cache.
    fake.tokens.delete(token);
    const after = await me(bearer(token));
    expect(after.status).toBe(401);
    expect(fake.count(INTROSPECT)).toBe(calls + 1);
  });
});

describe("bearer tokens and cookies are introspected", () => {
  test("a user token resolves to the user with orgs, entitlements and super-admin flag", async () => {
    const { token, sub } = userToken({ isSuperAdmin: true });
    const res = await me(bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      id: sub,
      type: "user",
      name: "Remote User",
      email: `${sub}@example.test`,
      orgs: [{ id: "acme", role: "admin" }, { id: "beta", role: "member" }],
      entitlements: ["messaging:admin"],
      isSuperAdmin: true,
    });
  });

  test("an agent token resolves to the agent id with its capabilities", async () => {
    const token = newToken();
    fake.tokens.set(token, {
      active: true,
      sub: "owner-of-agent",
      type: "agent",
      agentId: "assistant:support",
      name: "Support",
      organizations: [{ id: "acme", role: "member" }],
      entitlements: [],
      capabilities: ["cap:messaging.interrupt", "cap:messaging.route"],
    });
    const res = await me(bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: "assistant:support",
      type: "agent",
      entitlements: ["cap:messaging.interrupt", "cap:messaging.route"],
      orgs: [{ id: "acme", role: "member" }],
      isSuperAdmin: false,
    });
  });

  test.each(["symbia_session", "token"])("the %s cookie is introspected as a token", async (cookie) => {
    const { token, sub } = userToken();
    const res = await me({ cookie: `${cookie}=${token}` });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(sub);
  });

  test("the WebSocket ?token= query is introspected at the gate", async () => {
    const { token } = userToken();
    expect((await fetch(`${t.url}/api/ws?token=${token}`)).status).not.toBe(401);
    expect((await fetch(`${t.url}/api/ws?token=${newToken()}`)).status).toBe(401);
  });

  test("an inactive token is 401 invalid_credentials", async () => {
    const res = await me(bearer(newToken()));
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("invalid_credentials");
  });

  test("session reports the remote principal, and bootstrap says the mode is remote", async () => {
    const { token, sub } = userToken();
    const session = await t.request("GET", "/api/auth/session", { headers: bearer(token) });
    expect(session.body).toMatchObject({ authenticated: true, user: { id: sub } });
    expect((await t.request("GET", "/api/bootstrap")).body.authentication.mode).toBe("remote");
  });
});

describe("API keys are verified", () => {
  test("X-API-Key: a key without a creator is a service of its own, with the key's org and scopes", async () => {
    const key = `rk_${randomUUID()}`;
    fake.apiKeys.set(key, { valid: true, keyId: "k-123", name: "ingest", orgId: "acme", scopes: ["cap:messaging.route"] });
    const res = await me({ "x-api-key": key });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      id: "key:k-123",
      type: "service",
      name: "ingest",
      orgs: [{ id: "acme", role: "member" }],
      entitlements: ["cap:messaging.route"],
      isSuperAdmin: false,
    });
  });

  test("a key with a creator acts as its creator; sent as bearer it is verified after introspection declines", async () => {
    const key = `rk_${randomUUID()}`;
    fake.apiKeys.set(key, { valid: true, keyId: "k-456", name: "bot key", orgId: "beta", scopes: [], creator: { id: "assistant:bot", type: "agent" } });
    const res = await me(bearer(key));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ id: "assistant:bot", type: "agent", orgs: [{ id: "beta", role: "member" }] });
  });

  test("an invalid key is 401 invalid_credentials", async () => {
    const res = await me({ "x-api-key": `rk_${randomUUID()}` });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("invalid_credentials");
  });
});

describe("caching", () => {
  test("a positive answer is reused: the second request does not reach the Identity service", async () => {
    const { token } = userToken();
    const key = `rk_${randomUUID()}`;
    fake.apiKeys.set(key, { valid: true, keyId: `k-${randomUUID()}`, scopes: [] });
    const introspections = fake.count(INTROSPECT);
    const verifications = fake.count(VERIFY_KEY);
    for (let i = 0; i < 3; i++) {
      expect((await me(bearer(token))).status).toBe(200);
      expect((await me({ "x-api-key": key })).status).toBe(200);
    }
    expect(fake.count(INTROSPECT)).toBe(introspections + 1);
    expect(fake.count(VERIFY_KEY)).toBe(verifications + 1);
  });

  test("concurrent requests with one new token share one introspection", async () => {
    const { token } = userToken();
    const before = fake.count(INTROSPECT);
    const answers = await Promise.all(Array.from({ length: 5 }, () => me(bearer(token))));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(fake.count(INTROSPECT)).toBe(before + 1);
  });

  test("a negative answer is not cached: the token is asked about again", async () => {
    const token = newToken();
    expect((await me(bearer(token))).status).toBe(401);
    fake.tokens.set(token, { active: true, sub: "late-bloomer", type: "user" });
    const res = await me(bearer(token));
    expect(res.status).toBe(200);
    expect(res.body.id).toBe("late-bloomer");
  });

  test("a failure is not cached: once the service is back, the same token works", async () => {
    const { token, sub } = userToken();
    fake.mode = "failing";
    const failed = await me(bearer(token));
    expect(failed.status).toBe(502);
    expect(failed.body).toEqual({ error: expect.any(String), code: "identity_unavailable" });
    fake.mode = "ok";
    const res = await me(bearer(token));
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(sub);
  });
});

describe("identity service unavailable", () => {
  test("a slow answer times out into 502 identity_unavailable", async () => {
    const { token } = userToken();
    fake.mode = "hanging";
    fake.hangMs = 1500;
    const started = performance.now();
    const res = await me(bearer(token));
    expect(res.status).toBe(502);
    expect(res.body.code).toBe("identity_unavailable");
    expect(performance.now() - started).toBeLessThan(1400);
  });

  test("nothing listening: login, logout and authenticated requests are 502; anonymous ones are still 401", async () => {
    const down = await startTestServer({ IDENTITY_URL: `http://127.0.0.1:${freePort()}`, IDENTITY_TIMEOUT_MS: "1000" });
    try {
      const login = await down.request("POST", "/api/auth/login", { body: { email: "a@example.test", password: "x" } });
      expect(login.status).toBe(502);
      expect(login.body).toEqual({ error: expect.any(String), code: "identity_unavailable" });
      const logout = await down.request("POST", "/api/auth/logout", { headers: bearer("whatever") });
      expect(logout.status).toBe(502);
      expect(logout.body.code).toBe("identity_unavailable");
      for (const headers of [bearer("whatever"), { "x-api-key": "whatever" }, { cookie: "symbia_session=whatever" }] as Record<string, string>[]) {
        const res = await down.request("GET", "/api/auth/me", { headers });
        expect(res.status).toBe(502);
        expect(res.body.code).toBe("identity_unavailable");
      }
      expect((await down.request("GET", "/api/auth/me")).status).toBe(401);
      expect((await down.request("GET", "/api/health")).status).toBe(200);
    } finally {
      await down.stop();
    }
  });
});
