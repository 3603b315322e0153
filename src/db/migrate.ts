/**
 * Applies the migrations embedded in the executable, in journal order, inside one transaction that first
 * takes an advisory lock: when several instances start at once, one migrates and the others wait, then
 * find nothing left to do.
 */
import { sql } from "drizzle-orm";
import { rows, type Db } from "./client";
import { MIGRATIONS } from "./migrations.generated";

const MIGRATION_LOCK_KEY = 727_001_5005;

export async function migrate(db: Db): Promise<string[]> {
  return db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
    await tx.execute(sql`create table if not exists symbia_migrations (
      tag text primary key,
      applied_at timestamptz not null default now()
    )`);
    const done = new Set((await rows<{ tag: string }>(tx, sql`select tag from symbia_migrations`)).map((r) => r.tag));
    const applied: string[] = [];
    for (const migration of MIGRATIONS) {
      if (done.has(migration.tag)) continue;
      for (const statement of migration.sql.split("--> statement-breakpoint")) {
        if (statement.trim()) await tx.execute(sql.raw(statement));
      }
      await tx.execute(sql`insert into symbia_migrations (tag) values (${migration.tag})`);
      applied.push(migration.tag);
    }
    return applied;
  });
}
