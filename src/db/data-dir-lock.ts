/**
 * The embedded database serves one process. A pid file in the data directory stops a second instance (or a
 * CLI command) from opening it while another process has it, with a message that says what to do instead.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class DataDirInUseError extends Error {}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The live process (other than this one) that holds the data directory, if any. */
export function dataDirHolder(dir: string): number | undefined {
  try {
    const holder = Number(readFileSync(join(dir, "symbia.pid"), "utf8").trim());
    return holder && holder !== process.pid && isAlive(holder) ? holder : undefined;
  } catch {
    return undefined;
  }
}

export function claimDataDir(dir: string): void {
  const holder = dataDirHolder(dir);
  if (holder) {
    throw new DataDirInUseError(
      `data directory ${dir} is in use by process ${holder}: the embedded database serves one process ` +
        `(set DATABASE_URL to run several instances on PostgreSQL)`,
    );
  }
  writeFileSync(join(dir, "symbia.pid"), String(process.pid));
}

export function releaseDataDir(dir: string): void {
  const file = join(dir, "symbia.pid");
  try {
    if (Number(readFileSync(file, "utf8").trim()) === process.pid) rmSync(file);
  } catch {
    // already gone
  }
}
