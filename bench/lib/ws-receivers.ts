/**
 * Client process of the WebSocket benchmarks: opens many sockets (one session token each), optionally joins
 * each to a conversation, then counts the benchmark messages that arrive and how long after their send they
 * arrived. Started and driven by bench/ws-fanout.ts and bench/ws-idle.ts through IPC (see ws-wire.ts):
 *
 *   open     {url, tokens, conversationId?, concurrency, timeoutMs} → {opened, failed, failedTokens, errors, ms}
 *   snapshot {}        → {total, atMs, open}: benchmark frames received so far, for a throughput window
 *   phase    {phase}   → {count, bytes, histogram}: frames of one phase and their send→receive latency
 *   close    {}        → closes every socket
 *
 * The same code measures the product and the raw baseline: both speak the same frames to it.
 */
import { LatencyHistogram } from "./latency-histogram";
import { readBenchContent, serveRequests, wallClockMs } from "./ws-wire";

interface PhaseStats {
  count: number;
  bytes: number;
  histogram: LatencyHistogram;
}

const sockets: WebSocket[] = [];
const phases = new Map<number, PhaseStats>();
const closeCodes: Record<string, number> = {};
let total = 0;
let otherFrames = 0;
let open = 0;

function phaseStats(phase: number): PhaseStats {
  let stats = phases.get(phase);
  if (!stats) phases.set(phase, (stats = { count: 0, bytes: 0, histogram: new LatencyHistogram() }));
  return stats;
}

/** The hot path: one call per delivered frame. No JSON parse for benchmark frames. */
function onFrame(event: MessageEvent): void {
  const data = event.data;
  if (typeof data !== "string") return;
  const bench = readBenchContent(data);
  if (!bench) {
    otherFrames++;
    return;
  }
  const latency = wallClockMs() - bench.sentAtMs;
  total++;
  const stats = phaseStats(bench.phase);
  stats.count++;
  stats.bytes += data.length;
  stats.histogram.record(latency);
}

interface OpenParams {
  url: string;
  tokens: string[];
  conversationId?: string;
  concurrency: number;
  timeoutMs: number;
}

/** Opens one socket, waits for session:ready and, when asked, for the join's ack. */
function openOne(params: OpenParams, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(params.url, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        ws.onmessage = null;
        ws.close();
        reject(error);
      } else {
        open++;
        sockets.push(ws);
        ws.onmessage = onFrame;
        resolve();
      }
    };
    const timer = setTimeout(() => finish(new Error("timed out opening or joining")), params.timeoutMs);
    ws.onmessage = (event) => {
      const text = String(event.data);
      if (readBenchContent(text)) return onFrame(event);
      const frame = JSON.parse(text) as { event: string; ack?: string; ok?: boolean; error?: { code: string } };
      if (frame.event === "session:ready") {
        if (!params.conversationId) return finish();
        ws.send(JSON.stringify({ event: "join:conversation", data: { conversationId: params.conversationId }, ack: "join" }));
      } else if (frame.event === "ack" && frame.ack === "join") {
        finish(frame.ok ? undefined : new Error(`join refused: ${frame.error?.code}`));
      } else {
        otherFrames++;
      }
    };
    ws.onclose = (event) => {
      if (settled) {
        open--;
        closeCodes[event.code] = (closeCodes[event.code] ?? 0) + 1;
      } else {
        finish(new Error(`closed with ${event.code} before it was ready`));
      }
    };
  });
}

serveRequests({
  async open(params: OpenParams) {
    const started = performance.now();
    const queue = [...params.tokens];
    const errors = new Map<string, number>();
    const failedTokens: string[] = [];
    let opened = 0;
    const worker = async () => {
      for (let token = queue.shift(); token !== undefined; token = queue.shift()) {
        try {
          await openOne(params, token);
          opened++;
        } catch (error) {
          failedTokens.push(token);
          const message = error instanceof Error ? error.message : String(error);
          errors.set(message, (errors.get(message) ?? 0) + 1);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, params.concurrency) }, worker));
    return { opened, failed: failedTokens.length, failedTokens, errors: Object.fromEntries(errors), ms: Math.round(performance.now() - started) };
  },

  snapshot() {
    return { total, atMs: wallClockMs(), open, otherFrames, closeCodes };
  },

  phase({ phase }: { phase: number }) {
    const stats = phases.get(phase);
    return stats
      ? { count: stats.count, bytes: stats.bytes, histogram: stats.histogram.toData() }
      : { count: 0, bytes: 0, histogram: new LatencyHistogram().toData() };
  },

  async close() {
    const closing = sockets.splice(0);
    const done = Promise.all(
      closing.map((ws) => (ws.readyState === WebSocket.CLOSED ? undefined : new Promise((resolve) => ws.addEventListener("close", resolve)))),
    );
    for (const ws of closing) ws.close(1000, "benchmark done");
    await Promise.race([done, Bun.sleep(5_000)]);
    return { closed: closing.length };
  },
});
