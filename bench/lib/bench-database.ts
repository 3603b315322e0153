/**
 * The benchmarks' own database: dropped and created again before a run, so that every run starts empty.
 * Only a database whose name contains "bench" is dropped, so that a mistyped DATABASE_URL cannot wipe a
 * real one.
 */
import postgres from "postgres";

export async function recreateBenchDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  if (!/^[a-z0-9_]*bench[a-z0-9_]*$/.test(name)) {
    throw new Error(`refusing to drop database ${JSON.stringify(name)}: its name must contain "bench"`);
  }
  url.pathname = "/postgres";
  const admin = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists ${name} with (force)`);
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
}
