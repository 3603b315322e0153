/**
 * Sender process of bench/ws-fanout.ts: sends `message:send` frames at a fixed rate over a few WebSocket
 * connections (round robin), each carrying its wall-clock send time in the content (ws-wire.ts). Open
 * loop: message k goes out at start + k / rate whatever happened to earlier ones, so a slow server shows
 * as latency, not as a lower send rate. Driven over IPC:
 *
 *   open {url, token, connections}                                       → {opened}
 *   run  {conversationId, rate, warmupSeconds, seconds, warmupPhase, phase, contentBytes}
 *        → {sent, warmupSent, acked, errors, firstError, maxLagMs}
 *   close {}
 *
 * A connection's frames are handled by the server one after another (a send waits for the previous one's
 * commit), so one connection caps the rate at 1 / (time of one send); several connections lift that cap.
 */
import { benchContent, serveRequests, wallClockMs } from "./ws-wire";

const sockets: WebSocket[] = [];
let acked = 0;
const errors: Record<string, number> = {};
let firstError: string | undefined;

function onAnswer(event: MessageEvent): void {
  const frame = JSON.parse(String(event.data)) as { event: string; ok?: boolean; error?: { code: string; message: string }; data?: any };
  if (frame.event === "ack") {
    if (frame.ok) acked++;
    else countError(frame.error?.code ?? "unknown", frame.error?.message);
  } else if (frame.event === "error") {
    countError(frame.data?.code ?? "unknown", frame.data?.message);
  }
}

function countError(code: string, message?: string): void {
  errors[code] = (errors[code] ?? 0) + 1;
  firstError ??= `${code}: ${message ?? ""}`;
}

function openOne(url: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers: { authorization: `Bearer ${token}` } } as unknown as string[]);
    const timer = setTimeout(() => reject(new Error("sender socket not ready within 10 s")), 10_000);
    ws.onmessage = (event) => {
      if (JSON.parse(String(event.data)).event !== "session:ready") return;
      clearTimeout(timer);
      ws.onmessage = onAnswer;
      resolve(ws);
    };
    ws.onclose = (event) => {
      clearTimeout(timer);
      countError(`closed_${event.code}`);
      reject(new Error(`sender socket closed with ${event.code}`));
    };
  });
}

interface RunParams {
  conversationId: string;
  rate: number;
  warmupSeconds: number;
  seconds: number;
  warmupPhase: number;
  phase: number;
  contentBytes: number;
}

function run(params: RunParams): Promise<object> {
  const warmupCount = Math.round(params.rate * params.warmupSeconds);
  const totalCount = warmupCount + Math.round(params.rate * params.seconds);
  const intervalMs = 1000 / params.rate;
  const ackedBefore = acked;
  const errorsBefore = Object.values(errors).reduce((a, b) => a + b, 0);
  const prefix = `{"event":"message:send","data":{"conversationId":${JSON.stringify(params.conversationId)},"content":"`;
  let next = 0;
  let maxLagMs = 0;
  const started = performance.now();
  return new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (next < totalCount && started + next * intervalMs <= now) {
        maxLagMs = Math.max(maxLagMs, now - (started + next * intervalMs));
        const phase = next < warmupCount ? params.warmupPhase : params.phase;
        const content = benchContent(phase, wallClockMs(), params.contentBytes);
        const ws = sockets[next % sockets.length];
        if (ws.readyState === WebSocket.OPEN) ws.send(`${prefix}${content}"},"ack":"${next}"}`);
        else countError("sender_socket_closed");
        next++;
      }
      if (next < totalCount) return void setTimeout(tick, 1);
      // Give the last acks a moment, then report.
      const expected = ackedBefore + totalCount;
      const deadline = performance.now() + 5_000;
      const settle = () => {
        const errorCount = Object.values(errors).reduce((a, b) => a + b, 0) - errorsBefore;
        if (acked + errorCount < expected && performance.now() < deadline) return void setTimeout(settle, 20);
        resolve({
          sent: totalCount - warmupCount,
          warmupSent: warmupCount,
          acked: acked - ackedBefore,
          errors: { ...errors },
          firstError,
          maxLagMs: Math.round(maxLagMs * 100) / 100,
          seconds: Math.round(performance.now() - started) / 1000,
        });
      };
      settle();
    };
    tick();
  });
}

serveRequests({
  async open({ url, token, connections }: { url: string; token: string; connections: number }) {
    for (let i = 0; i < connections; i++) sockets.push(await openOne(url, token));
    return { opened: sockets.length };
  },
  run,
  close() {
    for (const ws of sockets.splice(0)) ws.close(1000, "benchmark done");
    return {};
  },
});
