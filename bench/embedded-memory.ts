#!/usr/bin/env bun
/**
 * Memory and start-up time of the compiled executable on the embedded database, seen from outside the
 * process as an operator's monitoring would: VmRSS and VmHWM from /proc/<pid>/status, sampled every 10 ms.
 *
 * For each binary: a first start on an empty DATA_DIR (time to a healthy /api/health, peak VmHWM, RSS
 * once idle), a SIGTERM, then a restart on the same directory (the same figures), and optionally REST
 * sends per second. With several binaries the runs are interleaved round by round, and the send bursts
 * take turns between servers that all run at once, so that other work on a shared machine weighs on each
 * of them alike.
 *
 *   bun run build && bun run bench/embedded-memory.ts
 *   BINARIES=before=/tmp/before/symbia-messaging,after=dist/symbia-messaging ROUNDS=3 SENDS=10 \
 *     bun run bench/embedded-memory.ts
 *
 * Settings: BINARIES (label=path,…; default current=dist/symbia-messaging), ROUNDS (1), IDLE (seconds to
 * watch an idle server after it became healthy, 12), SENDS (seconds of one burst of REST sends; 0 skips
 * them), BURSTS (bursts per binary, taking turns between the binaries, 5), CONCURRENCY (of the sends, 16).
 */
import type { Subprocess } from "bun";
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { spawnLoad } from "./lib/load";

const REPOSITORY = resolve(import.meta.dir, "..");
const ROUNDS = Number(process.env.ROUNDS ?? 1);
const IDLE_SECONDS = Number(process.env.IDLE ?? 12);
const SEND_SECONDS = Number(process.env.SENDS ?? 0);
const SEND_BURSTS = Number(process.env.BURSTS ?? 5);
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 16);
const ADMIN = { email: "bench@example.test", password: "a long benchmark password" };

const binaries = (process.env.BINARIES || `current=${join(REPOSITORY, "dist/symbia-messaging")}`).split(",").map((entry) => {
  const [label, path] = entry.includes("=") ? entry.split("=", 2) : [entry, entry];
  return { label, path: resolve(path) };
});

// ---------------------------------------------------------------- sampling /proc

interface Status {
  rss: number;
  hwm: number;
}

async function status(pid: number): Promise<Status | undefined> {
  try {
    const text = await Bun.file(`/proc/${pid}/status`).text();
    const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, "m").exec(text)?.[1] ?? 0);
    return { rss: kib("VmRSS") * 1024, hwm: kib("VmHWM") * 1024 };
  } catch {
    return undefined;
  }
}

/** Samples a process until stopped; keeps the highest VmHWM seen (it is gone once the process exits). */
class Sampler {
  hwm = 0;
  last: Status = { rss: 0, hwm: 0 };
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly pid: number) {
    this.done = (async () => {
      while (this.running) {
        const s = await status(this.pid);
        if (s) {
          this.last = s;
          this.hwm = Math.max(this.hwm, s.hwm);
        }
        await Bun.sleep(10);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

// ---------------------------------------------------------------- one server process

function freePort(): number {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

interface Running {
  child: Subprocess;
  url: string;
  sampler: Sampler;
  startMs: number;
}

async function start(binary: string, dataDir: string): Promise<Running> {
  const port = freePort();
  const began = performance.now();
  const child = Bun.spawn([binary, "serve"], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      DATA_DIR: dataDir,
      PORT: String(port),
      HOST: "127.0.0.1",
      LOG_LEVEL: "warn",
      SYMBIA_ADMIN_EMAIL: ADMIN.email,
      SYMBIA_ADMIN_PASSWORD: ADMIN.password,
    },
    stdout: "ignore",
    stderr: "inherit",
  });
  const sampler = new Sampler(child.pid);
  const url = `http://127.0.0.1:${port}`;
  const deadline = began + 60_000;
  while (performance.now() < deadline && child.exitCode === null) {
    try {
      if ((await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(1000) })).status === 200) {
        return { child, url, sampler, startMs: performance.now() - began };
      }
    } catch {
      // not listening yet
    }
    await Bun.sleep(10);
  }
  child.kill("SIGKILL");
  throw new Error(`${binary} did not become healthy within 60 s`);
}

async function stop(running: Running): Promise<void> {
  running.child.kill("SIGTERM");
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 20_000);
  await running.child.exited;
  clearTimeout(timer);
  await running.sampler.stop();
}

function treeBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? treeBytes(path) : entry.isFile() ? statSync(path).size : 0;
  }
  return total;
}

/** Logs in as the bootstrap admin and creates a conversation to send into. */
async function sendTarget(url: string): Promise<{ url: string; headers: Record<string, string> }> {
  const login = await fetch(`${url}/api/auth/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(ADMIN),
  });
  const { token } = (await login.json()) as { token: string };
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const created = await fetch(`${url}/api/conversations`, { method: "POST", headers, body: JSON.stringify({ type: "group", name: "bench" }) });
  const { id } = (await created.json()) as { id: string };
  return { url: `${url}/api/conversations/${id}/messages`, headers };
}

async function sendBurst(target: { url: string; headers: Record<string, string> }): Promise<number> {
  const result = await spawnLoad({
    url: target.url,
    method: "POST",
    headers: target.headers,
    body: JSON.stringify({ content: "benchmark message: a short line of text, like most chat messages" }),
    concurrency: CONCURRENCY,
    durationSeconds: SEND_SECONDS,
    warmupSeconds: 1,
    expectStatus: 201,
  });
  if (result.errors > 0) throw new Error(`${result.errors} sends failed`);
  return result.rps;
}

// ---------------------------------------------------------------- one run

interface Phase {
  healthyMs: number;
  hwm: number;
  /** RSS at the end of the idle window. */
  idleRss: number;
  /** Seconds after healthy until RSS stayed within 5 % of its final value. */
  settleSeconds: number;
}

async function watchIdle(running: Running): Promise<Phase> {
  const healthyAt = performance.now();
  const trace: { t: number; rss: number }[] = [];
  while (performance.now() - healthyAt < IDLE_SECONDS * 1000) {
    await Bun.sleep(100);
    trace.push({ t: (performance.now() - healthyAt) / 1000, rss: running.sampler.last.rss });
  }
  const final = trace.at(-1)!.rss;
  const lastAbove = trace.findLast((p) => p.rss > final * 1.05);
  return { healthyMs: running.startMs, hwm: running.sampler.hwm, idleRss: final, settleSeconds: lastAbove?.t ?? 0 };
}

interface Run {
  first: Phase;
  restart: Phase;
  dataDirBytes: number;
}

const dataDirs: string[] = [];
process.on("exit", () => dataDirs.forEach((dir) => rmSync(resolve(dir, ".."), { recursive: true, force: true })));

async function run(binary: string, dataDir: string): Promise<Run> {
  let running = await start(binary, dataDir);
  const first = await watchIdle(running);
  await stop(running);
  const dataDirBytes = treeBytes(dataDir);
  running = await start(binary, dataDir);
  const restart = await watchIdle(running);
  await stop(running);
  return { first, restart, dataDirBytes };
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

const results = new Map<string, Run[]>(binaries.map((b) => [b.label, []]));
const lastDataDir = new Map<string, string>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const binary of binaries) {
    const dataDir = join(mkdtempSync(join(tmpdir(), "symbia-mem-")), "data");
    dataDirs.push(dataDir);
    lastDataDir.set(binary.label, dataDir);
    const result = await run(binary.path, dataDir);
    results.get(binary.label)!.push(result);
    console.error(`round ${round} ${binary.label}: ${JSON.stringify(result)}`);
  }
}

// Sends: every binary's server runs at once (restarted on its data directory), and short bursts take
// turns, so that a busy moment on the machine falls on all of them rather than on one.
const sendRates = new Map<string, number[]>(binaries.map((b) => [b.label, []]));
const loadedRss = new Map<string, number>();
if (SEND_SECONDS > 0) {
  const servers = [];
  for (const binary of binaries) {
    const running = await start(binary.path, lastDataDir.get(binary.label)!);
    servers.push({ label: binary.label, running, target: await sendTarget(running.url) });
  }
  try {
    for (let burst = 0; burst < SEND_BURSTS; burst++) {
      // Rotate the order so that no binary always goes first.
      for (let i = 0; i < servers.length; i++) {
        const server = servers[(burst + i) % servers.length];
        const rate = await sendBurst(server.target);
        sendRates.get(server.label)!.push(rate);
        loadedRss.set(server.label, Math.max(loadedRss.get(server.label) ?? 0, server.running.sampler.last.rss));
        console.error(`burst ${burst + 1} ${server.label}: ${rate.toFixed(0)} sends/s`);
      }
    }
  } finally {
    for (const server of servers) await stop(server.running);
  }
}

console.log(`\nmedian of ${ROUNDS} round(s)${SEND_SECONDS ? ` and of ${SEND_BURSTS} bursts of ${SEND_SECONDS} s × ${CONCURRENCY} senders` : ""}; MB = 10^6 bytes; idle = RSS ${IDLE_SECONDS} s after healthy`);
console.log(
  "| Binary | First start: healthy ms | VmHWM MB | idle RSS MB | settles after s | Restart: healthy ms | VmHWM MB | idle RSS MB | DATA_DIR MB |" +
    (SEND_SECONDS ? " sends/s | RSS after sends MB |" : ""),
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + (SEND_SECONDS ? "---:|---:|" : ""));
for (const [label, runs] of results) {
  const m = (pick: (r: Run) => number) => median(runs.map(pick));
  const cells = [
    label,
    m((r) => r.first.healthyMs).toFixed(0),
    mb(m((r) => r.first.hwm)),
    mb(m((r) => r.first.idleRss)),
    m((r) => r.first.settleSeconds).toFixed(1),
    m((r) => r.restart.healthyMs).toFixed(0),
    mb(m((r) => r.restart.hwm)),
    mb(m((r) => r.restart.idleRss)),
    mb(m((r) => r.dataDirBytes)),
  ];
  if (SEND_SECONDS) cells.push(median(sendRates.get(label)!).toFixed(0), mb(loadedRss.get(label)!));
  console.log(`| ${cells.join(" | ")} |`);
}
