/**
 * The PostgreSQL pool after PostgreSQL closes its connections (as a failover or a terminated backend
 * does): what was under way fails as unavailable, and the pool goes on answering at once from live
 * connections, not from one that was closed nor after waiting out a connect timeout.
 */
import { describe, expect, test } from "bun:test";
import { openPostgres } from "../../src/db/client";
import { isDatabaseUnavailable } from "../../src/core/database-errors";
import { TEST_DATABASE_URL } from "../support/database";

describe.skipIf(!TEST_DATABASE_URL)("the PostgreSQL pool", () => {
  test("a batch whose connection PostgreSQL closes fails as unavailable, and every later query is answered at once", async () => {
    const database = await openPostgres(TEST_DATABASE_URL!, 2);
    try {
      for (let round = 0; round < 3; round++) {
        const failure = await database
          .batch([{ text: "select 1", params: [] }, { text: "select pg_terminate_backend(pg_backend_pid())", params: [] }, { text: "select 2", params: [] }])
          .then(() => undefined, (error: unknown) => error);
        expect(isDatabaseUnavailable(failure)).toBe(true);
        const started = performance.now();
        const burst = async () => {
          const answers = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => database.query<{ n: number }>("select $1::int as n", [i])));
          return answers.filter((a): a is PromiseRejectedResult => a.status === "rejected").map((a) => a.reason);
        };
        // PostgreSQL's own notice of the termination may still reach one query (as a 503 would); no more.
        const first = await burst();
        expect(first.length).toBeLessThanOrEqual(1);
        expect(first.every(isDatabaseUnavailable)).toBe(true);
        expect((await burst()).map(String)).toEqual([]);
        expect(performance.now() - started).toBeLessThan(2000);
      }
    } finally {
      await database.close();
    }
  }, 30_000);
});
