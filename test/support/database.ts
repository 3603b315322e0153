/**
 * Test databases. With TEST_DATABASE_URL the suite runs on that PostgreSQL (migrated once per run, shared
 * by tests, which use unique ids); without it, each server gets its own in-memory PGlite cloned from one
 * migrated template, so initdb runs once per run instead of once per test.
 */
import { randomUUID } from "node:crypto";
import { openPglite, openPostgres, type Database } from "../../src/db/client";
import { migrate } from "../../src/db/migrate";

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || undefined;
export const usingPostgres = Boolean(TEST_DATABASE_URL);

let template: Promise<Blob> | undefined;
let postgresMigrated: Promise<void> | undefined;

function pgliteTemplate(): Promise<Blob> {
  template ??= (async () => {
    const { database, client } = await openPglite({});
    await migrate(database.db);
    const dump = await client.dumpDataDir("none");
    await database.close();
    return dump;
  })();
  return template;
}

export async function openTestDatabase(): Promise<Database> {
  if (TEST_DATABASE_URL) {
    postgresMigrated ??= (async () => {
      const db = await openPostgres(TEST_DATABASE_URL, 2);
      try {
        await migrate(db.db);
      } finally {
        await db.close();
      }
    })();
    await postgresMigrated;
    return openPostgres(TEST_DATABASE_URL, 10);
  }
  return (await openPglite({ loadDataDir: await pgliteTemplate() })).database;
}

/**
 * A migrated database with no rows at all, for tests that need "nothing exists yet" (the first
 * administrator). On PostgreSQL that is a database of its own, dropped when it is closed.
 */
export async function openEmptyTestDatabase(): Promise<Database> {
  if (!TEST_DATABASE_URL) return openTestDatabase();
  const name = `symbia_test_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const runOnServer = async (statement: string) => {
    const server = await openPostgres(TEST_DATABASE_URL, 1);
    try {
      await server.pg!.unsafe(statement);
    } finally {
      await server.close();
    }
  };
  await runOnServer(`create database ${name}`);
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  const database = await openPostgres(url.toString(), 5);
  await migrate(database.db);
  const close = database.close.bind(database);
  database.close = async () => {
    await close();
    await runOnServer(`drop database if exists ${name} with (force)`);
  };
  return database;
}
