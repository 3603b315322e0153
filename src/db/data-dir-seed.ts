/**
 * The migrated data directory a first start unpacks instead of running initdb. The executable carries one:
 * build.ts generates it (scripts/build-data-dir-seed.ts) and replaces this module with one that embeds
 * it. Run from source there is none, and a first start runs initdb as PGlite does by default.
 */
export async function dataDirSeed(): Promise<Blob | undefined> {
  return undefined;
}
