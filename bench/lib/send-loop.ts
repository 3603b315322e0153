export {};
/**
 * Load process: CONCURRENCY keep-alive loops POSTing messages to TARGET for SECONDS; prints one JSON line
 * with sends/s and latency percentiles. Runs in its own process so that it does not share the server's loop.
 */
const target = process.env.TARGET!;
const token = process.env.TOKEN!;
const seconds = Number(process.env.SECONDS ?? 5);
const concurrency = Number(process.env.CONCURRENCY ?? 32);
const body = JSON.stringify({ content: "benchmark message with a little text in it" });
const latencies: number[] = [];
let errors = 0;
const deadline = performance.now() + seconds * 1000;

async function worker() {
  while (performance.now() < deadline) {
    const started = performance.now();
    const res = await fetch(target, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body,
    });
    await res.arrayBuffer();
    if (res.status !== 201) errors++;
    else latencies.push(performance.now() - started);
  }
}
const started = performance.now();
await Promise.all(Array.from({ length: concurrency }, worker));
const elapsed = (performance.now() - started) / 1000;
latencies.sort((a, b) => a - b);
const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? 0).toFixed(2));
console.log(JSON.stringify({ sends: latencies.length, errors, perSecond: Math.round(latencies.length / elapsed), p50: pct(50), p99: pct(99) }));
