/**
 * The embedded database's data directory on disk: kept private to the service's user, and seeded on a
 * first start from the migrated data directory the executable carries, so that initdb (a second
 * PostgreSQL instance inside the process, about a gigabyte of memory and seconds of CPU) never runs in
 * production.
 */
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";

export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/** The PostgreSQL data directory inside DATA_DIR. */
export function pgdataOf(dataDir: string): string {
  return join(dataDir.replace(/\/+$/, "") || "/", "pgdata");
}

/**
 * Creates `dir` if needed and makes it and everything in it reachable by the owner only. WebAssembly
 * PostgreSQL writes some files with mode 0666 whatever the process umask, so the modes are set
 * explicitly, here at open and again at close. Returns how many entries had to change.
 */
export function makePrivate(dir: string): number {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  let changed = 0;
  const visit = (path: string) => {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return;
    const wanted = stat.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    if ((stat.mode & 0o777) !== wanted) {
      chmodSync(path, wanted);
      changed++;
    }
    if (stat.isDirectory()) for (const entry of readdirSync(path)) visit(join(path, entry));
  };
  visit(dir);
  return changed;
}

/** Whether PostgreSQL has a data directory in `pgdata` (else PGlite runs initdb there). */
export function isInitialised(pgdata: string): boolean {
  return existsSync(join(pgdata, "PG_VERSION"));
}

/** A data directory not created yet (or left empty): the first start. Anything else is PGlite's to open. */
export function isEmpty(pgdata: string): boolean {
  return !existsSync(pgdata) || readdirSync(pgdata).length === 0;
}

/**
 * Unpacks the shipped data directory into `pgdata`. It is written beside it first and renamed into place,
 * so that a start interrupted half-way leaves no half-written database behind, only a directory that the
 * next start removes.
 */
export async function seedDataDir(pgdata: string, template: Blob): Promise<void> {
  const staging = `${pgdata}.seeding`;
  rmSync(staging, { recursive: true, force: true });
  const bytes = new Uint8Array(await template.arrayBuffer());
  // Unzipped first: Bun.Archive extracts a plain tar several times faster than a gzipped one.
  const tar = bytes[0] === 0x1f && bytes[1] === 0x8b ? Bun.gunzipSync(bytes) : bytes;
  await new Bun.Archive(tar).extract(staging);
  makePrivate(staging);
  rmSync(pgdata, { recursive: true, force: true }); // an empty directory, if any
  renameSync(staging, pgdata);
}
