/**
 * PostgreSQL settings of the embedded database, passed on its command line at every start (they win over
 * postgresql.conf, and leave that file as initdb wrote it).
 *
 * initdb sizes a server for a machine of its own: 128 MB of shared buffers, which PGlite allocates inside
 * its WebAssembly memory and which stays resident, and shared memory for 100 connections where PGlite
 * serves one. A messaging server's hot pages (the tail of the messages table and its indexes, counters,
 * participants) fit in a few megabytes, and the operating system's page cache still holds the data files
 * behind the buffers. bench/README.md (`embedded-memory.ts`) shows what 16, 8 and 4 MB cost in memory and in
 * sends per second.
 */
import { PGlite } from "@electric-sql/pglite";

export const EMBEDDED_SETTINGS: Record<string, string> = {
  shared_buffers: "4MB",
  // Shared memory (lock tables, process slots) is sized by it; one backend runs.
  max_connections: "4",
};

export function embeddedStartParams(settings: Record<string, string> = EMBEDDED_SETTINGS): string[] {
  const params = [...PGlite.defaultStartParams];
  for (const [name, value] of Object.entries(settings)) params.push("-c", `${name}=${value}`);
  return params;
}
