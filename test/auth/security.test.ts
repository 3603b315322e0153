/**
 * Security properties of authentication that must hold for every route, present and future: nothing but
 * the public routes answers without a credential, and secrets are neither stored nor logged in clear.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomUUID } from "node:crypto";
import { eq } from "drizzle-orm";
import { parseApiKey } from "../../src/auth/secrets";
import { apiKeys, principals, sessions } from "../../src/db/schema";
import { setLogLevel } from "../../src/log";
import type { LogLevel } from "../../src/config";
import { startTestServer, uniq, type TestServer } from "../support/server";
import { useEndToEndTimeout } from "../support/timeout";

useEndToEndTimeout();

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ LOGIN_MAX_FAILURES: "1000" });
});
afterAll(() => t.stop());

const PUBLIC_ROUTES = new Set(["/api/health", "/api/bootstrap", "/api/auth/login", "/api/auth/logout", "/api/auth/session"]);
const isPublic = (path: string) => PUBLIC_ROUTES.has(path) || /^\/(docs|console)(\/|$)/.test(path);

/** A concrete URL for a route pattern: path parameters become random UUIDs, wildcards a word. */
function concretePath(pattern: string): string {
  return pattern.replace(/:[A-Za-z_][A-Za-z0-9_]*\??/g, () => randomUUID()).replace(/\*/g, "anything");
}

describe("every non-public route needs a credential", () => {
  test("answers 401 without one, before looking at the body", async () => {
    const routes = t.server.app.routes.filter((r) => !isPublic(r.path));
    // The auth module's own /me at least; more as modules are added.
    expect(routes.length).toBeGreaterThan(0);
    const failures: string[] = [];
    for (const route of routes) {
      const method = route.method === "WS" || route.method === "ALL" ? "GET" : route.method;
      const path = concretePath(route.path);
      const hasBody = !["GET", "HEAD", "OPTIONS"].includes(method);
      for (const headers of [{}, { authorization: "Bearer nonsense" }, { "x-api-key": "smk_nonsense" }] as Record<string, string>[]) {
        const res = await fetch(t.url + path, {
          method,
          headers: hasBody ? { ...headers, "content-type": "application/json" } : headers,
          body: hasBody ? "{not json" : undefined,
        });
        const body = method === "HEAD" ? undefined : ((await res.json().catch(() => undefined)) as { code?: unknown } | undefined);
        if (res.status !== 401 || (method !== "HEAD" && typeof body?.code !== "string")) {
          failures.push(`${route.method} ${route.path} with ${JSON.stringify(headers)}: ${res.status}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  test("public routes answer without credentials", async () => {
    for (const path of ["/api/health", "/api/bootstrap", "/api/auth/session", "/docs/openapi.json", "/console"]) {
      expect((await fetch(t.url + path)).status).toBe(200);
    }
  });
});

describe("secrets at rest", () => {
  test("an API key is stored only as a hash", async () => {
    const created = await t.admin.createKey({ principalId: `agent:${uniq()}`, type: "agent", entitlements: ["cap:messaging.route"] });
    const secret = parseApiKey(created.key)!.secret;
    const stored = await t.server.services.database.db.select().from(apiKeys).where(eq(apiKeys.id, created.id));
    expect(stored).toHaveLength(1);
    const dump = JSON.stringify(stored);
    expect(dump).not.toContain(created.key);
    expect(dump).not.toContain(secret);
    expect(stored[0].prefix).toBe(created.prefix);
    expect(stored[0].key_hash).toMatch(/^[0-9a-f]{64}$/);
    // Listing keys shows neither the key nor its hash.
    const listed = JSON.stringify(await t.admin.listKeys({ principalId: created.principalId }));
    expect(listed).not.toContain(secret);
    expect(listed).not.toContain(stored[0].key_hash);
  });

  test("session tokens and passwords are stored only as hashes", async () => {
    const password = `pw-${randomUUID()}`;
    const user = await t.admin.createUser({ email: `${uniq("u")}@example.test`, password });
    const login = await t.request("POST", "/api/auth/login", { body: { email: user.email, password } });
    expect(login.status).toBe(200);
    const token: string = login.body.token;
    const db = t.server.services.database.db;
    const storedSessions = JSON.stringify(await db.select().from(sessions).where(eq(sessions.principal_id, user.id)));
    expect(storedSessions).not.toContain(token.split(".")[1]);
    const [row] = await db.select().from(principals).where(eq(principals.id, user.id));
    expect(row.password_hash).toStartWith("$argon2id$");
    expect(JSON.stringify(row)).not.toContain(password);
  });
});

describe("secrets in logs", () => {
  test("keys, tokens and passwords never reach a log line, even at debug level", async () => {
    const lines: string[] = [];
    const originalOut = process.stdout.write;
    const originalErr = process.stderr.write;
    const capture = ((chunk: unknown) => {
      lines.push(typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk as Uint8Array));
      return true;
    }) as typeof process.stdout.write;
    const password = `pw-${randomUUID()}`;
    const secrets: string[] = [password];
    process.stdout.write = capture;
    process.stderr.write = capture;
    setLogLevel("debug");
    try {
      const agent = await t.admin.createKey({ principalId: `agent:${uniq()}`, type: "agent" });
      secrets.push(agent.key, parseApiKey(agent.key)!.secret);
      await t.request("GET", "/api/auth/me", { headers: { "x-api-key": agent.key } });
      await t.request("GET", "/api/auth/me", { headers: { authorization: `Bearer ${agent.key}` } });
      await fetch(`${t.url}/api/ws?apiKey=${encodeURIComponent(agent.key)}`);
      await t.request("GET", "/api/auth/me", { headers: { "x-api-key": agent.key.slice(0, -2) + "xx" } });
      await t.admin.revokeKey(agent.id);
      await t.request("GET", "/api/auth/me", { headers: { "x-api-key": agent.key } });

      const user = await t.admin.createUser({ email: `${uniq("u")}@example.test`, password });
      await t.request("POST", "/api/auth/login", { body: { email: user.email, password: "not-it" } });
      const login = await t.request("POST", "/api/auth/login", { body: { email: user.email, password } });
      const token: string = login.body.token;
      secrets.push(token, token.split(".")[1]);
      await t.request("GET", "/api/auth/me", { headers: { authorization: `Bearer ${token}` } });
      await fetch(`${t.url}/api/ws?token=${encodeURIComponent(token)}`);
      await t.request("POST", "/api/auth/logout", { headers: { cookie: `symbia_session=${token}` } });
    } finally {
      setLogLevel((process.env.LOG_LEVEL ?? "silent") as LogLevel);
      process.stdout.write = originalOut;
      process.stderr.write = originalErr;
    }
    const output = lines.join("");
    // The capture worked: requests and operator actions were logged.
    expect(output).toContain('"msg":"request"');
    expect(output).toContain('"msg":"api key created"');
    for (const secret of secrets) expect(output).not.toContain(secret);
  });
});
