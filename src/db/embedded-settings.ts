/**
 * PostgreSQL settings of the embedded database, passed on its command line at every start (they win over
 * postgresql.conf, and leave that file as initdb wrote it).
 *
 * initdb sizes a server for a machine of its own: 128 MB of shared buffers, which PGlite allocates inside
 * its WebAssembly memory and which stays resident, and shared memory for 100 connections where PGlite
 * serves one. A messaging server's working set (recent messages, counters, credentials) is far smaller,
 * and the operating system's page cache still holds the data files behind the buffers; bench/README.md
 * shows what each setting costs in memory and in sends per second.
 */
import { PGlite } from "@electric-sql/pglite";

export const EMBEDDED_SETTINGS: Record<string, string> = {
  shared_buffers: "16MB",
};

export function embeddedStartParams(settings: Record<string, string> = EMBEDDED_SETTINGS): string[] {
  const params = [...PGlite.defaultStartParams];
  for (const [name, value] of Object.entries(settings)) params.push("-c", `${name}=${value}`);
  return params;
}
