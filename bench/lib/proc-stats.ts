/**
 * What a process costs, read from /proc (Linux): resident memory and CPU time, plus the whole machine's
 * busy time, so that a benchmark can tell its own load apart from other work running on the host.
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat and /proc/stat (USER_HZ; 100 on every usual Linux). */
const TICKS_PER_SECOND = 100;

/** Resident set size of a process in bytes (VmRSS), or undefined when it is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, all threads) a process has used so far, in ms; 0 when it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields are counted after its closing one.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** Summed CPU time of several processes, in ms. */
export function cpuMsOf(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuMs(pid), 0);
}

/** The machine's busy and total CPU time so far, in ms summed over cores. */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0];
  const ticks = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = ticks[3] + ticks[4];
  return { busy: ((total - idle) * 1000) / TICKS_PER_SECOND, total: (total * 1000) / TICKS_PER_SECOND };
}

/** The soft limit on open files of a process, from /proc/<pid>/limits. */
export function openFileLimit(pid: number | "self" = "self"): number {
  const limits = readFileSync(`/proc/${pid}/limits`, "utf8");
  const match = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
  return !match || match[1] === "unlimited" ? Infinity : Number(match[1]);
}

/**
 * CPU use over an interval: start() now, then stop() gives each watched group's share of one core
 * (1.0 = one core busy all the time) and the share of the whole machine used by everything else.
 */
export class CpuWindow {
  private startedAt = 0;
  private readonly before = new Map<string, number>();
  private machineBefore = { busy: 0, total: 0 };

  constructor(private readonly groups: Record<string, number[]>) {}

  start(): void {
    this.startedAt = performance.now();
    for (const [name, pids] of Object.entries(this.groups)) this.before.set(name, cpuMsOf(pids));
    this.machineBefore = machineCpuMs();
  }

  /** Cores used per group over the interval, and `other`: cores busy with work outside every group. */
  stop(): Record<string, number> & { other: number } {
    const elapsed = performance.now() - this.startedAt;
    const result: Record<string, number> = {};
    let ours = 0;
    for (const [name, pids] of Object.entries(this.groups)) {
      const used = cpuMsOf(pids) - (this.before.get(name) ?? 0);
      ours += used;
      result[name] = round2(used / elapsed);
    }
    const machine = machineCpuMs();
    const busy = machine.busy - this.machineBefore.busy;
    return { ...result, other: round2(Math.max(0, busy - ours) / elapsed) };
  }
}

const round2 = (value: number) => Math.round(value * 100) / 100;
