/**
 * Boots the real server (the same startServer as production) on a free port for end-to-end tests, with a
 * test database, and offers fixtures that create principals and credentials directly in that database.
 */
import { randomUUID } from "node:crypto";
import { loadConfig, type Config } from "../../src/config";
import { apiKeys, memberships, organizations, principals, sessions } from "../../src/db/schema";
import { formatSessionToken, hashSecret, newApiKey, newSecret } from "../../src/auth/secrets";
import { IdentityDirectory } from "../../src/auth/identity-directory";
import type { Database } from "../../src/db/client";
import { startServer, type RunningServer } from "../../src/server";
import { openTestDatabase } from "./database";

export interface TestPrincipal {
  id: string;
  type: "user" | "agent" | "service";
  email?: string;
  /** Session token (users) or API key (agents, services). */
  token: string;
  headers: Record<string, string>;
}

export interface PrincipalOptions {
  type?: "user" | "agent" | "service";
  id?: string;
  email?: string;
  password?: string;
  name?: string;
  orgs?: (string | { id: string; role: "admin" | "member" })[];
  entitlements?: string[];
  superAdmin?: boolean;
  /** For agents and services: credential is an API key with these scopes (defaults to `entitlements`). */
  sessionExpiresAt?: Date;
  /** For agents and services: when their API key expires (default: never). */
  keyExpiresAt?: Date;
}

export interface TestServer {
  server: RunningServer;
  config: Config;
  /** Operator operations on this server's database, announcing changes on its AuthChange bus. */
  admin: IdentityDirectory;
  url: string;
  wsUrl: string;
  stop(): Promise<void>;
  /** A unique org id, created in the database. */
  org(name?: string): Promise<string>;
  principal(options?: PrincipalOptions): Promise<TestPrincipal>;
  /** fetch against the server, JSON in and out. */
  request(method: string, path: string, options?: { as?: TestPrincipal; body?: unknown; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
}

export const uniq = (prefix = "t") => `${prefix}-${randomUUID().slice(0, 8)}`;

export interface TestServerOptions {
  /** A database to serve instead of a fresh test database (e.g. an empty one from openEmptyTestDatabase). */
  database?: Database;
}

export async function startTestServer(env: Record<string, string> = {}, options: TestServerOptions = {}): Promise<TestServer> {
  // No admin socket unless a test asks for one: parallel test servers would all claim ./data/admin.sock.
  const config = loadConfig({ LOG_LEVEL: "silent", ADMIN_SOCKET: "off", ...env, PORT: "0", HOST: "127.0.0.1" });
  const database = options.database ?? (await openTestDatabase());
  const server = await startServer(config, { database });
  const { db } = database;

  const ensureOrg = async (id: string) => {
    await db.insert(organizations).values({ id, name: id }).onConflictDoNothing();
  };

  const testServer: TestServer = {
    server,
    config,
    admin: new IdentityDirectory(db, server.services.authChanges),
    url: server.url,
    wsUrl: server.url.replace(/^http/, "ws") + "/api/ws",
    stop: () => server.stop(),
    async org(name) {
      const id = uniq(name ?? "org");
      await ensureOrg(id);
      return id;
    },
    async principal(options = {}) {
      const type = options.type ?? "user";
      const id = options.id ?? (type === "user" ? randomUUID() : `${type}:${uniq()}`);
      const email = type === "user" ? (options.email ?? `${uniq("user")}@example.test`) : undefined;
      await db.insert(principals).values({
        id,
        type,
        email,
        name: options.name ?? id,
        password_hash: options.password ? await Bun.password.hash(options.password) : null,
        is_super_admin: options.superAdmin ?? false,
        entitlements: type === "user" ? (options.entitlements ?? []) : [],
      });
      const orgs = (options.orgs ?? []).map((o) => (typeof o === "string" ? { id: o, role: "member" as const } : o));
      for (const org of orgs) {
        await ensureOrg(org.id);
        await db.insert(memberships).values({ principal_id: id, org_id: org.id, role: org.role });
      }
      let token: string;
      if (type === "user") {
        const sessionId = randomUUID();
        const secret = newSecret();
        await db.insert(sessions).values({
          id: sessionId,
          principal_id: id,
          token_hash: hashSecret(secret),
          expires_at: options.sessionExpiresAt ?? new Date(Date.now() + 3600_000),
        });
        token = formatSessionToken(sessionId, secret);
      } else {
        const key = newApiKey();
        await db.insert(apiKeys).values({
          prefix: key.prefix,
          key_hash: hashSecret(key.key),
          principal_id: id,
          scopes: options.entitlements ?? [],
          orgs,
          expires_at: options.keyExpiresAt ?? null,
        });
        token = key.key;
      }
      const headers: Record<string, string> =
        type === "user" ? { authorization: `Bearer ${token}` } : { "x-api-key": token };
      return { id, type, email, token, headers };
    },
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...(options.as?.headers ?? {}), ...(options.headers ?? {}) };
      let body: string | undefined;
      if (options.body !== undefined) {
        body = typeof options.body === "string" ? options.body : JSON.stringify(options.body);
        headers["content-type"] ??= "application/json";
      }
      const response = await fetch(server.url + path, { method, headers, body });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body: parsed, headers: response.headers };
    },
  };
  return testServer;
}
