/**
 * What the WebSocket benchmark processes share: the clock, the content of a benchmark message, and a small
 * request/answer layer over Bun's IPC channel between the orchestrating script and its client processes.
 */
import type { Subprocess } from "bun";

/**
 * Wall-clock time in ms with microsecond resolution, comparable between processes on one host
 * (performance.timeOrigin is the wall-clock start of the process, performance.now() is monotonic).
 */
export const wallClockMs = () => performance.timeOrigin + performance.now();

const MARK = "bench|";

/**
 * The content of a benchmark message: `bench|<phase>|<sent at, ms>|` padded with `x` to `bytes`. The phase
 * tells warm-up from measurement and one run from the next; the receiver needs no JSON parse to read it.
 */
export function benchContent(phase: number, sentAtMs: number, bytes: number): string {
  const head = `${MARK}${phase}|${sentAtMs.toFixed(3)}|`;
  return head.length >= bytes ? head : head + "x".repeat(bytes - head.length);
}

/** Phase and send time of a frame carrying benchmark content, or undefined for any other frame. */
export function readBenchContent(frame: string): { phase: number; sentAtMs: number } | undefined {
  const at = frame.indexOf(MARK);
  if (at < 0) return undefined;
  const phaseStart = at + MARK.length;
  const phaseEnd = frame.indexOf("|", phaseStart);
  const timeEnd = frame.indexOf("|", phaseEnd + 1);
  if (phaseEnd < 0 || timeEnd < 0) return undefined;
  return { phase: Number(frame.slice(phaseStart, phaseEnd)), sentAtMs: Number(frame.slice(phaseEnd + 1, timeEnd)) };
}

// ---------------------------------------------------------------- requests over IPC

interface Request {
  id: number;
  method: string;
  params: unknown;
}

interface Answer {
  id: number;
  result?: unknown;
  error?: string;
}

/** In a client process: answers the orchestrator's requests with `handlers`, one method each. */
export function serveRequests(handlers: Record<string, (params: any) => unknown | Promise<unknown>>): void {
  process.on("message", async (message: Request) => {
    let answer: Answer;
    try {
      const handler = handlers[message.method];
      if (!handler) throw new Error(`unknown method ${message.method}`);
      answer = { id: message.id, result: await handler(message.params) };
    } catch (error) {
      answer = { id: message.id, error: error instanceof Error ? error.message : String(error) };
    }
    process.send!(answer);
  });
  // The orchestrator went away (killed, crashed): do not linger with thousands of sockets open.
  process.on("disconnect", () => process.exit(0));
}

/** A client process started by the orchestrator, with `call` for requests and its pid for /proc. */
export class ClientProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>();
  readonly child: Subprocess;
  private stderr = "";

  constructor(script: string, readonly name: string, env: Record<string, string> = {}) {
    this.child = Bun.spawn([process.execPath, "run", script], {
      env: { ...process.env, ...env },
      stdin: "ignore",
      stdout: "inherit",
      stderr: "pipe",
      ipc: (message: Answer) => {
        const waiter = this.waiting.get(message.id);
        if (!waiter) return;
        this.waiting.delete(message.id);
        if (message.error !== undefined) waiter.reject(new Error(`${this.name}: ${message.error}`));
        else waiter.resolve(message.result);
      },
    });
    void this.collectStderr();
    void this.child.exited.then((code) => {
      const error = new Error(`${this.name} exited with ${code}${this.stderr ? `: ${this.stderr.trim().slice(-2000)}` : ""}`);
      for (const waiter of this.waiting.values()) waiter.reject(error);
      this.waiting.clear();
    });
  }

  private async collectStderr(): Promise<void> {
    const decoder = new TextDecoder();
    for await (const chunk of this.child.stderr as ReadableStream<Uint8Array>) {
      const text = decoder.decode(chunk);
      this.stderr = (this.stderr + text).slice(-8000);
      process.stderr.write(text.replace(/^(?=.)/gm, `[${this.name}] `));
    }
  }

  get pid(): number {
    return this.child.pid;
  }

  call<T>(method: string, params: unknown = {}, timeoutMs = 120_000): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.name}: ${method} did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.child.send({ id, method, params } satisfies Request);
    });
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill("SIGKILL");
  }
}
