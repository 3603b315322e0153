/**
 * Writes dist/pgdata-seed.tar.gz: an embedded database after initdb and every migration, which the
 * executable unpacks on a first start instead of running initdb (src/db/data-dir-seed.ts). Run by
 * build.ts; migrations added after a build are applied at start as usual.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { openPglite } from "../src/db/client";
import { migrate } from "../src/db/migrate";

export const SEED_PATH = resolve(import.meta.dir, "../dist/pgdata-seed.tar.gz");

export async function buildDataDirSeed(path = SEED_PATH): Promise<{ bytes: number; migrations: string[] }> {
  const { database, client } = await openPglite({});
  try {
    const migrations = await migrate(database.db);
    // Everything in the data files, so that a start from the seed has no WAL to replay.
    await client.exec("checkpoint");
    const seed = await client.dumpDataDir("gzip");
    mkdirSync(dirname(path), { recursive: true });
    const bytes = await Bun.write(path, seed);
    return { bytes, migrations };
  } finally {
    await database.close();
  }
}

if (import.meta.main) {
  const { bytes, migrations } = await buildDataDirSeed();
  console.log(`wrote ${SEED_PATH} (${(bytes / 1024 / 1024).toFixed(1)} MiB, ${migrations.length} migrations)`);
}
