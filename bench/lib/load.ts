/**
 * A small HTTP load generator: N concurrent loops, each sending its next request as soon as the previous
 * answer has been read, over keep-alive connections, for D seconds after a short warm-up. Reports
 * requests per second and latency percentiles.
 *
 * Run it in a process of its own (`spawnLoad`, or the command line below) so that generating load does
 * not compete with the server for the same event loop:
 *
 *   bun run bench/lib/load.ts --url http://127.0.0.1:5005/api/health [--header "Authorization: Bearer T"]...
 *     [--concurrency 32] [--duration 10] [--warmup 1] [--method GET] [--body '{...}'] [--expect 200]
 *
 * prints one JSON line: {requests, errors, seconds, rps, p50Ms, p90Ms, p99Ms, maxMs}.
 */

export interface LoadOptions {
  url: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  concurrency: number;
  durationSeconds: number;
  /** Seconds of load before measuring, to open connections and warm caches. */
  warmupSeconds?: number;
  /** Answers with another status count as errors (default 200). */
  expectStatus?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

function percentile(sorted: Float64Array, fraction: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const expected = options.expectStatus ?? 200;
  // Bun's fetch keeps connections alive and reuses them, so each loop holds about one connection.
  const init: RequestInit = { method: options.method ?? "GET", headers: options.headers, body: options.body };
  const warmupEnd = performance.now() + (options.warmupSeconds ?? 1) * 1000;
  const end = warmupEnd + options.durationSeconds * 1000;
  let latencies = new Float64Array(1 << 16);
  let count = 0;
  let errors = 0;

  const record = (ms: number) => {
    if (count === latencies.length) {
      const grown = new Float64Array(latencies.length * 2);
      grown.set(latencies);
      latencies = grown;
    }
    latencies[count++] = ms;
  };

  async function loop(): Promise<void> {
    for (let now = performance.now(); now < end; now = performance.now()) {
      let ok = false;
      try {
        const response = await fetch(options.url, init);
        await response.arrayBuffer();
        ok = response.status === expected;
      } catch {
        ok = false;
      }
      const done = performance.now();
      if (now < warmupEnd) continue;
      if (ok) record(done - now);
      else errors++;
    }
  }

  await Promise.all(Array.from({ length: options.concurrency }, loop));
  const measured = latencies.subarray(0, count).sort();
  return {
    requests: count,
    errors,
    seconds: options.durationSeconds,
    rps: Math.round(count / options.durationSeconds),
    p50Ms: round(percentile(measured, 0.5)),
    p90Ms: round(percentile(measured, 0.9)),
    p99Ms: round(percentile(measured, 0.99)),
    maxMs: round(measured.length ? measured[measured.length - 1] : 0),
  };
}

function toArgs(options: LoadOptions): string[] {
  const args = ["--url", options.url, "--concurrency", String(options.concurrency), "--duration", String(options.durationSeconds)];
  if (options.warmupSeconds !== undefined) args.push("--warmup", String(options.warmupSeconds));
  if (options.method) args.push("--method", options.method);
  if (options.body !== undefined) args.push("--body", options.body);
  if (options.expectStatus !== undefined) args.push("--expect", String(options.expectStatus));
  for (const [name, value] of Object.entries(options.headers ?? {})) args.push("--header", `${name}: ${value}`);
  return args;
}

function fromArgs(argv: string[]): LoadOptions {
  const options: LoadOptions = { url: "", concurrency: 32, durationSeconds: 10, headers: {} };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case "--url": options.url = value; break;
      case "--concurrency": options.concurrency = Number(value); break;
      case "--duration": options.durationSeconds = Number(value); break;
      case "--warmup": options.warmupSeconds = Number(value); break;
      case "--method": options.method = value; break;
      case "--body": options.body = value; break;
      case "--expect": options.expectStatus = Number(value); break;
      case "--header": {
        const colon = value.indexOf(":");
        if (colon < 1) throw new Error(`--header takes "Name: value", got "${value}"`);
        options.headers![value.slice(0, colon).trim()] = value.slice(colon + 1).trim();
        break;
      }
      default: throw new Error(`unknown flag ${flag}`);
    }
  }
  if (!options.url) throw new Error("--url is required");
  return options;
}

/** Runs the load in a separate Bun process and returns its result. */
export async function spawnLoad(options: LoadOptions): Promise<LoadResult> {
  const child = Bun.spawn([process.execPath, "run", import.meta.path, ...toArgs(options)], { stdout: "pipe", stderr: "pipe" });
  const timeoutMs = ((options.warmupSeconds ?? 1) + options.durationSeconds + 30) * 1000;
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  clearTimeout(timer);
  if (code !== 0) throw new Error(`load generator exited with ${code}: ${stderr.trim()}`);
  return JSON.parse(stdout.trim().split("\n").pop()!) as LoadResult;
}

if (import.meta.main) {
  try {
    const result = await runLoad(fromArgs(process.argv.slice(2)));
    process.stdout.write(JSON.stringify(result) + "\n");
  } catch (error) {
    process.stderr.write(`load: ${error instanceof Error ? error.message : error}\n`);
    process.exit(1);
  }
}
