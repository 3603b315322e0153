/**
 * The two database drivers behind one interface: postgres.js with a pool when DATABASE_URL is set, the
 * embedded PGlite (persisted in DATA_DIR) otherwise. Everything above this file sees a Drizzle database and
 * `rows()` for raw statements, whose result has the same shape on both drivers.
 */
import { PGlite } from "@electric-sql/pglite";
import type { SQL } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import { drizzle as drizzlePglite } from "drizzle-orm/pglite";
import { drizzle as drizzlePostgres } from "drizzle-orm/postgres-js";
import { mkdirSync } from "node:fs";
import postgres from "postgres";
import { isDatabaseUnavailable } from "../core/database-errors";
import { dbQueriesInFlight, dbQueryDuration } from "../metrics/registry";
import { loadPgliteAssets } from "./pglite-assets";
import { isEmpty, isInitialised, makePrivate, pgdataOf, PRIVATE_DIR_MODE, seedDataDir } from "./data-dir";
import { claimDataDir, releaseDataDir } from "./data-dir-lock";
import { dataDirSeed } from "./data-dir-seed";
import { embeddedStartParams } from "./embedded-settings";
import * as schema from "./schema";

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;
/** A Drizzle transaction handle, as passed to `db.transaction(async (tx) => ...)`. */
export type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];
export type Executor = Db | Tx;

export interface Database {
  kind: "postgres" | "pglite";
  db: Db;
  /** postgres.js client, for LISTEN/NOTIFY; absent on the embedded database. */
  pg?: postgres.Sql;
  /** The PostgreSQL URL, for connections of their own (the NOTIFY senders); absent on the embedded database. */
  url?: string;
  /**
   * A fixed statement with numbered parameters, for the hot path. On PostgreSQL it is a named prepared
   * statement on each pooled connection (parsed and planned once per connection, not per call).
   */
  query<T>(text: string, params: unknown[]): Promise<T[]>;
  /**
   * Fixed statements run in order in one transaction, with one commit for all of them: the rows of each.
   * Any failure rolls all of them back and rejects. On PostgreSQL the transaction's statements, its BEGIN
   * and its COMMIT are pipelined on one connection: one round trip whatever their number.
   */
  batch<T>(statements: readonly Statement[]): Promise<T[][]>;
  ping(timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
}

/** A fixed statement and its numbered parameters. */
export interface Statement {
  text: string;
  params: unknown[];
}

export class DatabaseUnavailableError extends Error {}

/** Rows of a raw `execute()`: postgres.js answers an array, PGlite an object with `rows`. */
export function rowsOf<T>(result: unknown): T[] {
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[];
}

export async function rows<T>(executor: Executor, query: SQL): Promise<T[]> {
  return rowsOf<T>(await executor.execute(query));
}

function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "the configured server";
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}

/**
 * Seconds before reconnecting, after `retries` failed attempts (counted across a client's connections).
 * postgres.js's default grows to 20 s, so a LISTEN connection could come back that long after PostgreSQL
 * did; this one stays under a second.
 */
export function reconnectBackoff(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1) * (0.5 + Math.random() / 2);
}

export async function openPostgres(url: string, poolSize: number): Promise<Database> {
  const pg = postgres(url, {
    max: poolSize,
    // Also the LISTEN connection's (postgres.js builds it from these options).
    backoff: reconnectBackoff,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
    // Connection errors surface as rejected queries; keep postgres.js from printing them too.
    debug: false,
    // Every statement here is short. PostgreSQL would JIT-compile one whose plan it estimates large (the
    // webhook dispatcher's reads of many pairs, through lateral joins), at ~100 ms a time.
    connection: { jit: "off" },
  });
  try {
    await withTimeout(pg`select 1`, 6000);
  } catch (error) {
    await pg.end({ timeout: 0 }).catch(() => {});
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseUnavailableError(`cannot reach PostgreSQL at ${describeTarget(url)}: ${reason}`);
  }
  const db = drizzlePostgres(pg, { schema }) as unknown as Db;
  const timings = dbQueryDuration.labels("postgres");
  const inFlight = dbQueriesInFlight.postgres;
  return {
    kind: "postgres",
    db,
    pg,
    url,
    async query<T>(text: string, params: unknown[]) {
      const started = performance.now();
      inFlight.inc();
      try {
        return (await pg.unsafe(text, params as never[], { prepare: true })) as unknown as T[];
      } finally {
        inFlight.dec();
        timings.since(started);
      }
    },
    async batch<T>(statements: readonly Statement[]) {
      const started = performance.now();
      inFlight.inc();
      const connection = await pg.reserve();
      // postgres.js 3.4 gives a reserved connection back as open even when PostgreSQL closed it meanwhile
      // (a failover, a terminated backend): its next query would write to a socket that is gone. One
      // that failed as unavailable is not given back; the pool has already taken it back as closed.
      let lost = false;
      try {
        // Written together, answered together. After a failure PostgreSQL refuses the statements that
        // follow (25P02) and turns the COMMIT into a rollback; every answer is awaited before the
        // connection goes back to the pool, and the first failure is the one reported.
        const sent = [
          connection.unsafe("begin"),
          ...statements.map((s) => connection.unsafe(s.text, s.params as never[], { prepare: true })),
          connection.unsafe("commit"),
        ];
        const settled = await Promise.allSettled(sent);
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
        if (failed) {
          lost = settled.some((r) => r.status === "rejected" && isDatabaseUnavailable(r.reason));
          throw failed.reason;
        }
        return settled.slice(1, -1).map((r) => (r as PromiseFulfilledResult<unknown>).value as T[]);
      } finally {
        if (!lost) connection.release();
        inFlight.dec();
        timings.since(started);
      }
    },
    async ping(timeoutMs = 2000) {
      try {
        await withTimeout(pg`select 1`, timeoutMs);
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await pg.end({ timeout: 5 });
    },
  };
}

export interface PgliteOptions {
  /** Directory to persist in; undefined keeps the database in memory (tests). */
  dataDir?: string;
  /** A `dumpDataDir()` tarball to start from instead of running initdb (tests clone a migrated template). */
  loadDataDir?: Blob;
  /** Leave the modes in the data directory as they are (`doctor` reports them rather than fixing them). */
  keepModes?: boolean;
}

/**
 * Before PGlite touches the data directory: private modes, the lock, and on a first start the shipped
 * data directory unpacked in place of initdb.
 */
async function prepareDataDir(dataDir: string, setModes: boolean): Promise<{ pgdata?: string; needsInitdb: boolean }> {
  const pgdata = pgdataOf(dataDir);
  if (isEmpty(pgdata)) {
    const seed = await dataDirSeed();
    if (seed) await seedDataDir(pgdata, seed);
  }
  if (setModes) makePrivate(dataDir);
  return { pgdata, needsInitdb: !isInitialised(pgdata) };
}

export async function openPglite(options: PgliteOptions): Promise<{ database: Database; client: PGlite }> {
  const setModes = !options.keepModes;
  if (options.dataDir) {
    // The process's own files (pid file, admin socket, directories PostgreSQL creates) are private too.
    process.umask(0o077);
    mkdirSync(options.dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    claimDataDir(options.dataDir);
  }
  let client: PGlite;
  // Compiling the WebAssembly runs beside unpacking the seed.
  const compiling = loadPgliteAssets({ initdb: false });
  compiling.catch(() => {});
  try {
    const target = options.dataDir ? await prepareDataDir(options.dataDir, setModes) : { pgdata: undefined, needsInitdb: !options.loadDataDir };
    // initdb's WebAssembly is compiled only when initdb will run.
    const assets = target.needsInitdb ? await loadPgliteAssets({ initdb: true }) : await compiling;
    client = await PGlite.create(target.pgdata, { ...assets, loadDataDir: options.loadDataDir, startParams: embeddedStartParams() });
    // initdb and PGlite's own writes ignore the umask: set the modes of what they created.
    if (options.dataDir && setModes) makePrivate(options.dataDir);
  } catch (error) {
    if (options.dataDir) releaseDataDir(options.dataDir);
    const reason = error instanceof Error ? error.message : String(error);
    throw new DatabaseUnavailableError(`cannot open the embedded database in ${options.dataDir ?? "memory"}: ${reason}`);
  }
  const db = drizzlePglite(client, { schema }) as unknown as Db;
  let closed = false;
  const timings = dbQueryDuration.labels("pglite");
  const inFlight = dbQueriesInFlight.pglite;
  const database: Database = {
    kind: "pglite",
    db,
    async query<T>(text: string, params: unknown[]) {
      const started = performance.now();
      inFlight.inc();
      try {
        return (await client.query<T>(text, params)).rows;
      } finally {
        inFlight.dec();
        timings.since(started);
      }
    },
    async batch<T>(statements: readonly Statement[]) {
      const started = performance.now();
      inFlight.inc();
      try {
        return await client.transaction(async (tx) => {
          const rows: T[][] = [];
          for (const s of statements) rows.push((await tx.query<T>(s.text, s.params)).rows);
          return rows;
        });
      } finally {
        inFlight.dec();
        timings.since(started);
      }
    },
    async ping() {
      if (closed) return false;
      try {
        await client.query("select 1");
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // close() flushes the data directory to disk.
      await client.close();
      if (options.dataDir) {
        releaseDataDir(options.dataDir);
        if (setModes) makePrivate(options.dataDir);
      }
    },
  };
  return { database, client };
}

export interface OpenOptions {
  databaseUrl?: string;
  poolSize: number;
  dataDir: string;
}

export async function openDatabase(options: OpenOptions): Promise<Database> {
  if (options.databaseUrl) return openPostgres(options.databaseUrl, options.poolSize);
  return (await openPglite({ dataDir: options.dataDir })).database;
}
