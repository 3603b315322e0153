/**
 * Gives PostgreSQL cores of its own for a benchmark, as in a deployment where the database runs on its own
 * machine: the postmaster and every process it has forked are pinned to `databaseCpus`, and so are the
 * backends it forks later (they inherit the postmaster's affinity); the calling process, and everything it
 * spawns afterwards (server, load generators), is pinned to `appCpus`. `restore()` puts PostgreSQL back.
 *
 * Needs Linux, `taskset` (util-linux) and the right to change PostgreSQL's processes (root, or the
 * postgres user). The database must be on this host.
 */
import { readFileSync } from "node:fs";
import type postgres from "postgres";

export interface CpuPlacement {
  describe: string;
  restore(): void;
}

function taskset(args: string[]): string {
  const result = Bun.spawnSync(["taskset", ...args], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`taskset ${args.join(" ")}: ${result.stderr.toString().trim()}`);
  return result.stdout.toString();
}

/** The postmaster and its children (backends, WAL writer, checkpointer, …). */
function processTree(postmaster: number): number[] {
  const children = Bun.spawnSync(["pgrep", "-P", String(postmaster)], { stdout: "pipe" }).stdout.toString();
  return [postmaster, ...children.split("\n").filter(Boolean).map(Number)];
}

export async function placeOnCpus(sql: postgres.Sql, databaseCpus: string, appCpus: string): Promise<CpuPlacement> {
  const [{ data_directory }] = await sql<{ data_directory: string }[]>`select current_setting('data_directory') as data_directory`;
  const postmaster = Number(readFileSync(`${data_directory}/postmaster.pid`, "utf8").split("\n")[0]);
  const original = taskset(["-p", String(postmaster)]).trim().split(/:\s*/).at(-1)!;
  for (const pid of processTree(postmaster)) taskset(["-a", "-p", "-c", databaseCpus, String(pid)]);
  taskset(["-a", "-p", "-c", appCpus, String(process.pid)]);
  return {
    describe: `PostgreSQL on CPU ${databaseCpus}, server and load generators on CPU ${appCpus}`,
    restore() {
      for (const pid of processTree(postmaster)) {
        try {
          taskset(["-a", "-p", original, String(pid)]);
        } catch {
          // a backend that has exited meanwhile
        }
      }
    },
  };
}
