/**
 * Writes dist/pgdata-seed.tar.gz: an embedded database after initdb and every migration, shut down
 * cleanly, which the executable unpacks on a first start instead of running initdb
 * (src/db/data-dir-seed.ts). Run by build.ts; migrations added after a build are applied at start as usual.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { openPglite } from "../src/db/client";
import { pgdataOf } from "../src/db/data-dir";
import { migrate } from "../src/db/migrate";

export const SEED_PATH = resolve(import.meta.dir, "../dist/pgdata-seed.tar.gz");

/** Every entry under `root` keyed by its relative path; directories end with "/" (so empty ones are kept). */
function entriesOf(root: string): Record<string, Blob | string> {
  const entries: Record<string, Blob | string> = {};
  const visit = (relative: string) => {
    for (const entry of readdirSync(join(root, relative), { withFileTypes: true })) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) {
        entries[`${path}/`] = "";
        visit(path);
      } else if (entry.isFile()) {
        entries[path] = new Blob([readFileSync(join(root, path))]);
      }
    }
  };
  visit("");
  return entries;
}

export async function buildDataDirSeed(path = SEED_PATH): Promise<{ bytes: number; migrations: string[] }> {
  const dataDir = join(mkdtempSync(join(tmpdir(), "symbia-seed-")), "data");
  try {
    const { database } = await openPglite({ dataDir });
    let migrations: string[];
    try {
      migrations = await migrate(database.db);
    } finally {
      // A clean shutdown: the seed starts without recovery and without a stale postmaster.pid.
      await database.close();
    }
    const archive = new Bun.Archive(entriesOf(pgdataOf(dataDir)), { compress: "gzip", level: 9 });
    mkdirSync(dirname(path), { recursive: true });
    const bytes = await Bun.write(path, await archive.bytes());
    return { bytes, migrations };
  } finally {
    rmSync(dirname(dataDir), { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { bytes, migrations } = await buildDataDirSeed();
  console.log(`wrote ${SEED_PATH} (${(bytes / 1024 / 1024).toFixed(1)} MiB, ${migrations.length} migrations)`);
}
