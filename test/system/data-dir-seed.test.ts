/**
 * The migrated data directory the executable carries (built by scripts/build-data-dir-seed.ts): a first
 * start unpacks it in place of initdb, and it opens as a database with every migration applied.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { buildDataDirSeed } from "../../scripts/build-data-dir-seed";
import { openPglite, rows } from "../../src/db/client";
import { isEmpty, pgdataOf, seedDataDir } from "../../src/db/data-dir";
import { migrate } from "../../src/db/migrate";
import { MIGRATIONS } from "../../src/db/migrations.generated";
import { tempDir } from "../support/harness";

setDefaultTimeout(120_000);

const parent = tempDir("symbia-seed-");
afterAll(() => rmSync(parent, { recursive: true, force: true }));

describe("the data directory seed", () => {
  test("unpacks into an empty DATA_DIR and opens migrated, private and without a staging directory", async () => {
    const seedPath = join(parent, "seed.tar.gz");
    const built = await buildDataDirSeed(seedPath);
    expect(built.migrations).toEqual(MIGRATIONS.map((m) => m.tag));

    const dataDir = join(parent, "data");
    const pgdata = pgdataOf(dataDir);
    // What an interrupted first start leaves behind.
    mkdirSync(`${pgdata}.seeding/base`, { recursive: true });
    writeFileSync(`${pgdata}.seeding/base/junk`, "x");
    expect(isEmpty(pgdata)).toBe(true);
    await seedDataDir(pgdata, new Blob([await Bun.file(seedPath).arrayBuffer()]));
    expect(existsSync(`${pgdata}.seeding`)).toBe(false);
    expect(existsSync(join(pgdata, "PG_VERSION"))).toBe(true);
    expect(isEmpty(pgdata)).toBe(false);
    expect(lstatSync(pgdata).mode & 0o777).toBe(0o700);
    expect(lstatSync(join(pgdata, "PG_VERSION")).mode & 0o777).toBe(0o600);

    const { database } = await openPglite({ dataDir });
    try {
      expect(await migrate(database.db)).toEqual([]);
      const [principalCount] = await rows<{ n: number }>(database.db, sql`select count(*)::int as n from principals`);
      expect(principalCount.n).toBe(0);
    } finally {
      await database.close();
    }
    expect(readdirSync(dataDir).sort()).toEqual(["pgdata"]);
  });
});
