/**
 * Several real server processes on one PostgreSQL, for the tests of test/cluster/.
 *
 * The instances get a database of their own on the test PostgreSQL server, created here and dropped at the
 * end. LISTEN/NOTIFY is scoped to a database, so the servers of other test files neither hear these
 * instances nor disturb them, and this database's backends can be terminated (a PostgreSQL outage as the
 * instances see it) without touching anyone else's connections. Principals and sessions are written
 * straight into it, as test/support/server.ts does for in-process servers.
 *
 * Instances are server processes of the harness (`bun run src/main.ts serve`, free port, own data
 * directory), which a test can also kill with SIGKILL. Every wait is bounded.
 */
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { createServer, connect as connectTcp, type Socket } from "node:net";
import { drizzle } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import { formatSessionToken, hashSecret, newSecret } from "../../src/auth/secrets";
import type { Db } from "../../src/db/client";
import { migrate } from "../../src/db/migrate";
import * as schema from "../../src/db/schema";
import { RawSocket } from "../realtime/helpers";
import { TEST_DATABASE_URL } from "./database";
import { minimalEnv, productCommand, startServer, tempDir } from "./harness";

/** The test's own connections carry this name, so that terminating "everyone else" spares them. */
const TEST_APPLICATION = "symbia-cluster-test";

export interface ClusterUser {
  id: string;
  token: string;
  headers: Record<string, string>;
}

export interface ClusterDatabase {
  name: string;
  url: string;
  /** The test's own pool (not terminated by `terminateBackends`). */
  sql: postgres.Sql;
  user(): Promise<ClusterUser>;
  /** Terminates every backend of this database except the test's own; returns how many. */
  terminateBackends(): Promise<number>;
  /** Waits until `count` instances listen for cross-instance frames. */
  waitForRelays(count: number, timeoutMs?: number): Promise<void>;
  drop(): Promise<void>;
}

async function onServer<T>(run: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(TEST_DATABASE_URL!, { max: 1, onnotice: () => {}, connect_timeout: 5 });
  try {
    return await run(sql);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export async function createClusterDatabase(): Promise<ClusterDatabase> {
  if (!TEST_DATABASE_URL) throw new Error("TEST_DATABASE_URL is not set");
  const name = `symbia_cluster_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  await onServer((sql) => sql.unsafe(`create database ${name}`));
  const target = new URL(TEST_DATABASE_URL);
  target.pathname = `/${name}`;
  const url = target.toString();
  // One connection, opened now and kept: the PostgreSQL server is shared and its connections are counted.
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5, connection: { application_name: TEST_APPLICATION } });
  const db = drizzle(sql, { schema }) as unknown as Db;
  await migrate(db);

  return {
    name,
    url,
    sql,
    async user() {
      const id = randomUUID();
      await db.insert(schema.principals).values({ id, type: "user", email: `${id}@cluster.test`, name: `user ${id.slice(0, 8)}` });
      const sessionId = randomUUID();
      const secret = newSecret();
      await db.insert(schema.sessions).values({
        id: sessionId,
        principal_id: id,
        token_hash: hashSecret(secret),
        expires_at: new Date(Date.now() + 3600_000),
      });
      const token = formatSessionToken(sessionId, secret);
      return { id, token, headers: { authorization: `Bearer ${token}` } };
    },
    async terminateBackends() {
      const rows = await sql<{ terminated: boolean }[]>`
        select pg_terminate_backend(pid) as terminated
          from pg_stat_activity
         where datname = ${name} and pid <> pg_backend_pid() and application_name <> ${TEST_APPLICATION}`;
      return rows.filter((r) => r.terminated).length;
    },
    async waitForRelays(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const [{ listening }] = await sql<{ listening: number }[]>`
          select count(*)::int as listening from pg_stat_activity
           where datname = ${name} and query ilike 'listen%symbia_events%'`;
        if (listening >= count) return;
        if (Date.now() > deadline) throw new Error(`${listening} of ${count} instances listen on symbia_events after ${timeoutMs} ms`);
        await Bun.sleep(50);
      }
    },
    async drop() {
      await sql.end({ timeout: 5 }).catch(() => {});
      await onServer((server) => server.unsafe(`drop database if exists ${name} with (force)`));
    },
  };
}

export interface Instance {
  name: string;
  url: string;
  wsUrl: string;
  pid: number;
  /** The tail of what the process printed (at LOG_LEVEL=warn: warnings and errors), for failure messages. */
  output(): string;
  request(method: string, path: string, options?: { as?: ClusterUser; body?: unknown; timeoutMs?: number }): Promise<{ status: number; body: any }>;
  /** A WebSocket as `who`, after its session:ready. */
  socket(who: ClusterUser, timeoutMs?: number): Promise<RawSocket>;
  /** A socket that has joined the conversation. */
  joined(who: ClusterUser, conversationId: string, since?: number): Promise<RawSocket>;
  kill(signal: "SIGKILL" | "SIGTERM"): void;
  /** SIGTERM, then the exit code (SIGKILL after 8 s). */
  stop(): Promise<number>;
}

export async function startInstance(name: string, databaseUrl: string, extraEnv: Record<string, string> = {}, timeoutMs = 30_000): Promise<Instance> {
  const dataDir = tempDir("symbia-cluster-");
  const server = await startServer({
    command: [...productCommand(), "serve"],
    env: {
      ...minimalEnv(),
      DATA_DIR: dataDir,
      DATABASE_URL: databaseUrl,
      // Three instances and the rest of the suite share one PostgreSQL with 100 connections.
      DATABASE_POOL_SIZE: "4",
      ADMIN_SOCKET: "off",
      LOG_LEVEL: "warn",
      SHUTDOWN_TIMEOUT_MS: "3000",
      ...extraEnv,
    },
    label: `instance ${name}`,
    healthTimeoutMs: timeoutMs,
  }).catch((error) => {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });

  const { url } = server;
  const wsUrl = url.replace(/^http/, "ws") + "/api/ws";
  const instance: Instance = {
    name,
    url,
    wsUrl,
    pid: server.pid,
    output: () => server.output(),
    async request(method, path, options = {}) {
      const headers: Record<string, string> = { ...(options.as?.headers ?? {}) };
      let body: string | undefined;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers["content-type"] = "application/json";
      }
      const response = await fetch(url + path, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: response.status, body: parsed };
    },
    async socket(who, socketTimeoutMs = 5000) {
      const socket = new RawSocket(new WebSocket(wsUrl, { headers: who.headers } as any));
      await socket.next("session:ready", socketTimeoutMs);
      return socket;
    },
    async joined(who, conversationId, since) {
      const socket = await instance.socket(who);
      const ack = await socket.request("join:conversation", since === undefined ? { conversationId } : { conversationId, since });
      if (!ack.ok) throw new Error(`join on ${name} failed: ${JSON.stringify(ack.error)}`);
      return socket;
    },
    kill(signal) {
      server.kill(signal);
    },
    async stop() {
      const code = await server.stop(8_000);
      rmSync(dataDir, { recursive: true, force: true });
      return code;
    },
  };
  return instance;
}

/** A group conversation created over REST on `on` by `owner`, with `members`. */
export async function groupConversation(on: Instance, owner: ClusterUser, members: ClusterUser[]): Promise<string> {
  const created = await on.request("POST", "/api/conversations", {
    as: owner,
    body: { type: "group", name: "cluster test", participants: members.map((m) => ({ userId: m.id, userType: "user" })) },
  });
  if (created.status !== 201) throw new Error(`create conversation on ${on.name}: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.id;
}

export async function restSend(on: Instance, who: ClusterUser, conversationId: string, content: string): Promise<any> {
  const sent = await on.request("POST", `/api/conversations/${conversationId}/messages`, { as: who, body: { content } });
  if (sent.status !== 201) throw new Error(`send on ${on.name}: ${sent.status} ${JSON.stringify(sent.body)}`);
  return sent.body;
}

/** The sequences of the `message:new` frames a socket has received, in arrival order. */
export function sequencesOf(socket: RawSocket): number[] {
  return socket.frames.filter((f) => f.event === "message:new").map((f) => f.data.sequence as number);
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

export interface PostgresProxy {
  /** The database URL through the proxy. */
  url: string;
  /** Cuts every connection through the proxy now and refuses new ones for `ms`: PostgreSQL gone for one instance. */
  interrupt(ms: number): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of PostgreSQL for one instance, so that a test can take PostgreSQL away from that
 * instance alone while the others keep writing (and notifying).
 */
export async function startPostgresProxy(databaseUrl: string): Promise<PostgresProxy> {
  const target = new URL(databaseUrl);
  const open = new Set<Socket>();
  let refuseUntil = 0;
  const server = createServer((client) => {
    if (Date.now() < refuseUntil) {
      client.destroy();
      return;
    }
    const upstream = connectTcp(Number(target.port || 5432), target.hostname);
    for (const [socket, other] of [[client, upstream], [upstream, client]] as const) {
      open.add(socket);
      socket.on("error", () => other.destroy());
      socket.on("close", () => {
        open.delete(socket);
        other.destroy();
      });
      socket.pipe(other);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("proxy has no port");
  const url = new URL(databaseUrl);
  url.hostname = "127.0.0.1";
  url.port = String(address.port);
  return {
    url: url.toString(),
    interrupt(ms) {
      refuseUntil = Date.now() + ms;
      for (const socket of [...open]) socket.destroy();
    },
    async close() {
      for (const socket of [...open]) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
