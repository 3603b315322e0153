/**
 * Test databases. With TEST_DATABASE_URL the suite runs on that PostgreSQL (migrated once per run, shared
 * by tests, which use unique ids); without it, each server gets its own in-memory PGlite cloned from one
 * migrated template, so initdb runs once per run instead of once per test.
 */
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
