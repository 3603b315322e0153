/**
 * Every way of presenting a credential, against every state a credential can be in. REST credentials are
 * checked on GET /api/auth/me; the WebSocket query parameters on GET /api/ws, where the gate runs before
 * any route (a request that passes the gate without upgrading is not a 401, whatever the route says).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { newSecret, parseApiKey, parseSessionToken } from "../../src/auth/secrets";
import { startTestServer, type TestPrincipal, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.stop());

interface Kind {
  name: string;
  credential: "session" | "key";
  /** On the WebSocket upgrade path, where credentials may come in the query. */
  websocket?: boolean;
  present(secret: string): { headers?: Record<string, string>; query?: string };
}

const KINDS: Kind[] = [
  { name: "session token as bearer", credential: "session", present: (s) => ({ headers: { authorization: `Bearer ${s}` } }) },
  { name: "symbia_session cookie", credential: "session", present: (s) => ({ headers: { cookie: `theme=dark; symbia_session=${s}` } }) },
  { name: "token cookie", credential: "session", present: (s) => ({ headers: { cookie: `token=${s}; theme=dark` } }) },
  { name: "API key in X-API-Key", credential: "key", present: (s) => ({ headers: { "x-api-key": s } }) },
  { name: "API key as bearer", credential: "key", present: (s) => ({ headers: { authorization: `Bearer ${s}` } }) },
  { name: "WebSocket ?token=", credential: "session", websocket: true, present: (s) => ({ query: `token=${encodeURIComponent(s)}` }) },
  { name: "WebSocket ?apiKey=", credential: "key", websocket: true, present: (s) => ({ query: `apiKey=${encodeURIComponent(s)}` }) },
];

async function call(kind: Kind, secret: string | undefined) {
  const presented = secret === undefined ? {} : kind.present(secret);
  const path = kind.websocket ? `/api/ws${presented.query ? `?${presented.query}` : ""}` : "/api/auth/me";
  const response = await fetch(t.url + path, { headers: presented.headers });
  const text = await response.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body };
}

function expectAdmitted(kind: Kind, result: { status: number; body: any }, principal: TestPrincipal) {
  if (kind.websocket) {
    expect(result.status).not.toBe(401);
  } else {
    expect(result.status).toBe(200);
    expect(result.body.id).toBe(principal.id);
  }
}

function expectRejected(result: { status: number; body: any }, code: string) {
  expect(result.status).toBe(401);
  expect(result.body).toEqual({ error: expect.any(String), code });
}

const holder = (kind: Kind, options: Parameters<TestServer["principal"]>[0] = {}) =>
  t.principal({ type: kind.credential === "session" ? "user" : "agent", ...options });

/** The same public part with another secret: right lookup, wrong hash. */
function withWrongSecret(kind: Kind, secret: string): string {
  if (kind.credential === "session") return `${parseSessionToken(secret)!.sessionId}.${newSecret()}`;
  return `smk_${parseApiKey(secret)!.prefix}_${newSecret()}`;
}

for (const kind of KINDS) {
  describe(kind.name, () => {
    test("valid: admitted as its principal", async () => {
      const principal = await holder(kind);
      expectAdmitted(kind, await call(kind, principal.token), principal);
    });

    test("missing: 401 unauthorized", async () => {
      expectRejected(await call(kind, undefined), "unauthorized");
    });

    test("malformed: 401 invalid_credentials", async () => {
      const malformed = kind.credential === "session" ? "not-a-session-token" : "smk_tooshort";
      expectRejected(await call(kind, malformed), "invalid_credentials");
    });

    test("wrong secret: 401 invalid_credentials", async () => {
      const principal = await holder(kind);
      expectRejected(await call(kind, withWrongSecret(kind, principal.token)), "invalid_credentials");
    });

    test("expired: 401 credential_expired", async () => {
      const past = new Date(Date.now() - 60_000);
      const principal = await holder(kind, kind.credential === "session" ? { sessionExpiresAt: past } : { keyExpiresAt: past });
      expectRejected(await call(kind, principal.token), "credential_expired");
    });

    test("revoked: 401 credential_revoked at once, though the credential was just cached", async () => {
      const principal = await holder(kind);
      expectAdmitted(kind, await call(kind, principal.token), principal);
      if (kind.credential === "session") {
        const logout = await t.request("POST", "/api/auth/logout", { as: principal });
        expect(logout.status).toBe(200);
      } else {
        await t.admin.revokeKey(parseApiKey(principal.token)!.prefix);
      }
      expectRejected(await call(kind, principal.token), "credential_revoked");
    });

    test("disabled principal: 401 principal_disabled at once, though the credential was just cached", async () => {
      const principal = await holder(kind);
      expectAdmitted(kind, await call(kind, principal.token), principal);
      await t.admin.disableUser(principal.id);
      expectRejected(await call(kind, principal.token), "principal_disabled");
    });
  });
}

describe("credential precedence and scope", () => {
  test("an API key carries its own entitlements and orgs, never super-admin power", async () => {
    const org = await t.org();
    const agent = await t.principal({ type: "agent", orgs: [{ id: org, role: "admin" }], entitlements: ["cap:messaging.interrupt"] });
    const me = await t.request("GET", "/api/auth/me", { as: agent });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ id: agent.id, type: "agent", entitlements: ["cap:messaging.interrupt"], isSuperAdmin: false });
    expect(me.body.orgs).toEqual([{ id: org, role: "admin" }]);
  });

  test("query credentials are read on the WebSocket path only", async () => {
    const user = await t.principal();
    const res = await t.request("GET", `/api/auth/me?token=${encodeURIComponent(user.token)}`);
    expect(res.status).toBe(401);
    expect(res.body.code).toBe("unauthorized");
  });

  test("a bad credential is rejected even alongside a good cookie", async () => {
    const user = await t.principal();
    const res = await t.request("GET", "/api/auth/me", {
      headers: { authorization: "Bearer nonsense", cookie: `symbia_session=${user.token}` },
    });
    expect(res.status).toBe(401);
  });
});
