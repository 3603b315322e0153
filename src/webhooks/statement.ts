/**
 * The webhook machinery's statements, written with numbered parameters and run through Drizzle rather
 * than `Database.query`: that path is the send's, and its metrics count hot-path statements only.
 * Those the dispatcher and the outbox run continuously under load are prepared on PostgreSQL
 * (`runPrepared`): parsed and planned once per connection, where planning the claim cost more than
 * running it.
 */
import { sql, type SQL } from "drizzle-orm";
import { rows, type Database, type Executor } from "../db/client";

/** `$n` placeholders become bound parameters; arrays must be passed as JSON (Drizzle expands arrays). */
export function statement(text: string, params: unknown[]): SQL {
  const parts = text.split(/\$(\d+)/);
  const chunks: SQL[] = [];
  for (let i = 0; i < parts.length; i++) {
    if (i % 2 === 0) {
      if (parts[i]) chunks.push(sql.raw(parts[i]));
    } else {
      chunks.push(sql`${params[Number(parts[i]) - 1]}`);
    }
  }
  return sql.join(chunks);
}

/** On the pool, or inside a write's transaction. */
export function run<T>(db: Executor, text: string, params: unknown[] = []): Promise<T[]> {
  return rows<T>(db, statement(text, params));
}

/** The same, as a named prepared statement on PostgreSQL; on the embedded database as `run`. */
export async function runPrepared<T>(database: Database, text: string, params: unknown[] = []): Promise<T[]> {
  if (!database.pg) return run<T>(database.db, text, params);
  return (await database.pg.unsafe(text, params as never[], { prepare: true })) as unknown as T[];
}
