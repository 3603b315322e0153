/**
 * Login, logout, session and me with the local identity: cookies, uniform failures, rate limits and
 * immediate revocation.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openEmptyTestDatabase } from "../support/database";
import { startTestServer, uniq, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

const PASSWORD = "correct horse battery staple";

let t: TestServer;
beforeAll(async () => {
  // A high limit: the failures of these tests all come from one address.
  t = await startTestServer({ LOGIN_MAX_FAILURES: "1000" });
});
afterAll(() => t.stop());

async function login(server: TestServer, email: string, password: string) {
  const started = performance.now();
  const res = await server.request("POST", "/api/auth/login", { body: { email, password } });
  return { ...res, ms: performance.now() - started };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

describe("login", () => {
  test("answers a token and the user, and sets an HttpOnly SameSite=Lax session cookie", async () => {
    const user = await t.principal({ password: PASSWORD, name: "Ada" });
    const res = await login(t, user.email!.toUpperCase(), PASSWORD);
    expect(res.status).toBe(200);
    expect(res.body.token).toEqual(expect.any(String));
    expect(res.body.user).toMatchObject({ id: user.id, type: "user", email: user.email, name: "Ada" });
    const cookies = res.headers.getSetCookie();
    expect(cookies).toHaveLength(1);
    const cookie = cookies[0];
    expect(cookie).toStartWith(`symbia_session=${res.body.token};`);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    expect(cookie).toContain("Path=/");
    expect(cookie).not.toContain("Secure");

    const byBearer = await t.request("GET", "/api/auth/me", { headers: { authorization: `Bearer ${res.body.token}` } });
    expect(byBearer.status).toBe(200);
    expect(byBearer.body.id).toBe(user.id);
    const byCookie = await t.request("GET", "/api/auth/me", { headers: { cookie: cookie.split(";")[0] } });
    expect(byCookie.status).toBe(200);
  });

  test("the cookie is Secure when COOKIE_SECURE=true", async () => {
    const secure = await startTestServer({ COOKIE_SECURE: "true" });
    try {
      const user = await secure.principal({ password: PASSWORD });
      const res = await login(secure, user.email!, PASSWORD);
      expect(res.status).toBe(200);
      expect(res.headers.getSetCookie()[0]).toContain("Secure");
    } finally {
      await secure.stop();
    }
  });

  test("unknown email, wrong password and disabled account get the same 401", async () => {
    const user = await t.principal({ password: PASSWORD });
    const disabled = await t.principal({ password: PASSWORD });
    await t.admin.disableUser(disabled.id);
    const answers = [
      await login(t, `${uniq("nobody")}@example.test`, PASSWORD),
      await login(t, user.email!, "wrong password"),
      await login(t, disabled.email!, PASSWORD),
    ];
    for (const answer of answers) {
      expect(answer.status).toBe(401);
      expect(answer.body).toEqual({ error: "Invalid email or password", code: "invalid_credentials" });
      expect(answer.headers.getSetCookie()).toEqual([]);
    }
  });

  test("an unknown email takes about as long as a wrong password (both pay for a password hash)", async () => {
    const user = await t.principal({ password: PASSWORD });
    await login(t, `${uniq("warmup")}@example.test`, PASSWORD); // the dummy hash is made once, on first use
    const unknown: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 5; i++) {
      unknown.push((await login(t, `${uniq("nobody")}@example.test`, PASSWORD)).ms);
      wrong.push((await login(t, user.email!, `wrong-${i}`)).ms);
    }
    // A password hash costs tens of milliseconds; a lookup that skipped it would take about one.
    expect(median(wrong)).toBeGreaterThan(5);
    expect(median(unknown)).toBeGreaterThan(5);
    expect(median(unknown) * 10).toBeGreaterThan(median(wrong));
    expect(median(wrong) * 10).toBeGreaterThan(median(unknown));
  });

  test("rejects bodies without email or password with 400", async () => {
    const res = await t.request("POST", "/api/auth/login", { body: { email: "a@b.c" } });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("invalid_input");
  });
});

describe("login rate limits", () => {
  test("repeated failures on one account: 429 with Retry-After, even with the right password", async () => {
    const limited = await startTestServer({ LOGIN_MAX_FAILURES: "3", LOGIN_WINDOW_SECONDS: "600" });
    try {
      const user = await limited.principal({ password: PASSWORD });
      const other = await limited.principal({ password: PASSWORD });
      for (let i = 0; i < 3; i++) expect((await login(limited, user.email!, "wrong")).status).toBe(401);
      const blocked = await login(limited, user.email!, PASSWORD);
      expect(blocked.status).toBe(429);
      expect(blocked.body.code).toBe("rate_limited");
      const retryAfter = Number(blocked.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(600);
      // Counted per account (and the address is still under its own, looser limit).
      expect((await login(limited, other.email!, PASSWORD)).status).toBe(200);
    } finally {
      await limited.stop();
    }
  });

  test("repeated failures from one address across accounts: 429 for any account from it", async () => {
    const limited = await startTestServer({ LOGIN_MAX_FAILURES: "2", LOGIN_WINDOW_SECONDS: "600" });
    try {
      const user = await limited.principal({ password: PASSWORD });
      // The per-address limit is four times the per-account one; each attempt names a different account.
      for (let i = 0; i < 8; i++) expect((await login(limited, `${uniq("guess")}@example.test`, "x")).status).toBe(401);
      const blocked = await login(limited, user.email!, PASSWORD);
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await limited.stop();
    }
  });
});

describe("failed logins from one address do not lock the account for others", () => {
  const from = (server: TestServer, ip: string, email: string, password: string) =>
    server.request("POST", "/api/auth/login", { body: { email, password }, headers: { "x-forwarded-for": ip } });

  test("a lockout cannot be triggered from one address against logins from another", async () => {
    // The test client is the trusted proxy; X-Forwarded-For names each request's client.
    const limited = await startTestServer({ LOGIN_MAX_FAILURES: "3", LOGIN_WINDOW_SECONDS: "600", TRUST_PROXY: "127.0.0.1, ::1" });
    try {
      const user = await limited.principal({ password: PASSWORD });
      expect((await from(limited, "198.51.100.7", user.email!, PASSWORD)).status).toBe(200);
      const attempts = [];
      for (let i = 0; i < 10; i++) attempts.push((await from(limited, "203.0.113.9", user.email!, "wrong")).status);
      expect(attempts).toEqual([401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
      // The attacker's address is shut out, even with the right password...
      expect((await from(limited, "203.0.113.9", user.email!, PASSWORD)).status).toBe(429);
      // ...the owner's usual address is not,
      expect((await from(limited, "198.51.100.7", user.email!, PASSWORD)).status).toBe(200);
      // and a new address waits at most a moment (the account slows down; it does not lock).
      const fresh = await from(limited, "192.0.2.44", user.email!, PASSWORD);
      if (fresh.status === 429) {
        const wait = Number(fresh.headers.get("retry-after"));
        expect(wait).toBeLessThanOrEqual(1);
        await Bun.sleep(wait * 1000 + 100);
        expect((await from(limited, "192.0.2.44", user.email!, PASSWORD)).status).toBe(200);
      } else {
        expect(fresh.status).toBe(200);
      }
    } finally {
      await limited.stop();
    }
  });

  test("X-Forwarded-For from a peer that is not a trusted proxy is ignored", async () => {
    const limited = await startTestServer({ LOGIN_MAX_FAILURES: "3", LOGIN_WINDOW_SECONDS: "600" });
    try {
      const user = await limited.principal({ password: PASSWORD });
      // A fresh claimed address per attempt does not dodge the per-address count.
      const attempts = [];
      for (let i = 0; i < 5; i++) attempts.push((await from(limited, `203.0.113.${i}`, user.email!, "wrong")).status);
      expect(attempts).toEqual([401, 401, 401, 429, 429]);
    } finally {
      await limited.stop();
    }
  });
});

describe("logout", () => {
  test("revokes the session at once, even right after it was used (and cached)", async () => {
    const user = await t.principal({ password: PASSWORD });
    const { body } = await login(t, user.email!, PASSWORD);
    const headers = { authorization: `Bearer ${body.token}` };
    expect((await t.request("GET", "/api/auth/me", { headers })).status).toBe(200);
    const out = await t.request("POST", "/api/auth/logout", { headers });
    expect(out.status).toBe(200);
    expect(out.body).toEqual({ ok: true, revoked: true });
    const cleared = out.headers.getSetCookie()[0];
    expect(cleared).toStartWith("symbia_session=;");
    expect(cleared).toContain("Max-Age=0");
    const after = await t.request("GET", "/api/auth/me", { headers });
    expect(after.status).toBe(401);
    expect(after.body.code).toBe("credential_revoked");
  });

  test("with the cookie only, revokes the cookie's session", async () => {
    const user = await t.principal({ password: PASSWORD });
    const { body } = await login(t, user.email!, PASSWORD);
    const headers = { cookie: `symbia_session=${body.token}` };
    expect((await t.request("GET", "/api/auth/me", { headers })).status).toBe(200);
    expect((await t.request("POST", "/api/auth/logout", { headers })).status).toBe(200);
    expect((await t.request("GET", "/api/auth/me", { headers })).status).toBe(401);
  });

  test("revokes only that session: the user's other sessions keep working", async () => {
    const user = await t.principal({ password: PASSWORD });
    const first = (await login(t, user.email!, PASSWORD)).body.token;
    const second = (await login(t, user.email!, PASSWORD)).body.token;
    await t.request("POST", "/api/auth/logout", { headers: { authorization: `Bearer ${first}` } });
    expect((await t.request("GET", "/api/auth/me", { headers: { authorization: `Bearer ${second}` } })).status).toBe(200);
  });

  test("without credentials (or with a bad one) still answers 200 and clears the cookie", async () => {
    for (const headers of [{}, { authorization: "Bearer nonsense" }] as Record<string, string>[]) {
      const res = await t.request("POST", "/api/auth/logout", { headers });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ok: true, revoked: false });
      expect(res.headers.getSetCookie()[0]).toContain("Max-Age=0");
    }
  });

  test("with an API key says that nothing was revoked, and the key keeps working", async () => {
    const agent = await t.principal({ type: "agent" });
    for (const headers of [{ "x-api-key": agent.token }, { authorization: `Bearer ${agent.token}` }] as Record<string, string>[]) {
      const res = await t.request("POST", "/api/auth/logout", { headers });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ ok: true, revoked: false, note: expect.stringContaining("API key") });
      expect((await t.request("GET", "/api/auth/me", { headers })).status).toBe(200);
    }
  });
});

describe("session and me", () => {
  test("session is never 401: anonymous, invalid, revoked and valid", async () => {
    expect((await t.request("GET", "/api/auth/session")).body).toEqual({ authenticated: false });
    const invalid = await t.request("GET", "/api/auth/session", { headers: { authorization: "Bearer nonsense" } });
    expect(invalid.status).toBe(200);
    expect(invalid.body).toEqual({ authenticated: false });

    const user = await t.principal({ password: PASSWORD });
    const valid = await t.request("GET", "/api/auth/session", { as: user });
    expect(valid.status).toBe(200);
    expect(valid.body).toMatchObject({ authenticated: true, user: { id: user.id, type: "user" } });

    await t.request("POST", "/api/auth/logout", { as: user });
    const revoked = await t.request("GET", "/api/auth/session", { as: user });
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ authenticated: false });
  });

  test("me is 401 for anonymous callers", async () => {
    const res = await t.request("GET", "/api/auth/me");
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ error: expect.any(String), code: "unauthorized" });
  });
});

describe("first administrator", () => {
  test("is created from SYMBIA_ADMIN_EMAIL/PASSWORD on an empty database, once", async () => {
    const email = `${uniq("admin")}@example.test`;
    const env = { SYMBIA_ADMIN_EMAIL: email, SYMBIA_ADMIN_PASSWORD: PASSWORD };
    const server = await startTestServer(env, { database: await openEmptyTestDatabase() });
    try {
      const res = await login(server, email, PASSWORD);
      expect(res.status).toBe(200);
      expect(res.body.user).toMatchObject({ email, isSuperAdmin: true });
      // Starting again with users present changes nothing.
      expect(await server.admin.ensureBootstrapAdmin({ adminEmail: `${uniq("other")}@example.test`, adminPassword: "x" })).toBeUndefined();
      expect((await server.admin.listUsers()).map((u) => u.email)).toEqual([email]);
    } finally {
      await server.stop();
    }
  });
});
