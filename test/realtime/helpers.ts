/**
 * Protocol-level helpers for the realtime tests: a raw WebSocket that records every frame, with bounded
 * waits for a frame, for silence, and for the close.
 */
import { MessagingClient } from "../../src/client";
import type { TestPrincipal, TestServer } from "../support/server";

export interface Frame {
  event: string;
  data?: any;
  ack?: string | number;
  ok?: boolean;
  error?: { code: string; message: string };
}

type Matcher = (frame: Frame) => boolean;

export class RawSocket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private readonly waiters = new Set<() => void>();
  private nextAck = 0;
  private closeInfo?: { code: number; reason: string };

  constructor(readonly ws: WebSocket) {
    ws.onmessage = (message) => {
      this.frames.push(JSON.parse(String(message.data)));
      for (const wake of [...this.waiters]) wake();
    };
    this.closed = new Promise((resolve) => {
      ws.addEventListener("close", (event) => {
        this.closeInfo = { code: event.code, reason: event.reason };
        resolve(this.closeInfo);
        for (const wake of [...this.waiters]) wake();
      });
    });
  }

  get isClosed(): boolean {
    return this.closeInfo !== undefined;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Waits for the first recorded frame (from `from` on) that matches. */
  async next(match: Matcher | string, timeoutMs = 3000, from = 0): Promise<Frame> {
    const test: Matcher = typeof match === "string" ? (f) => f.event === match : match;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.slice(from).find(test);
      if (found) return found;
      if (this.closeInfo) throw new Error(`socket closed (${this.closeInfo.code}) while waiting for a frame`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching frame within ${timeoutMs} ms; got: ${this.frames.map((f) => f.event).join(", ")}`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }

  /** Sends a frame with an ack id and waits for its ack. */
  async request(event: string, data?: unknown, timeoutMs = 5000): Promise<Frame> {
    const ack = `a${++this.nextAck}`;
    const from = this.frames.length;
    this.send({ event, data, ack });
    return this.next((f) => f.event === "ack" && f.ack === ack, timeoutMs, from);
  }

  /** Asserts that no matching frame arrives within `ms` (a bounded wait for silence). */
  async expectNone(match: Matcher | string, ms = 300): Promise<void> {
    const test: Matcher = typeof match === "string" ? (f) => f.event === match : match;
    const from = this.frames.length;
    await Bun.sleep(ms);
    const found = this.frames.slice(from).find(test);
    if (found) throw new Error(`unexpected frame ${JSON.stringify(found).slice(0, 300)}`);
  }

  count(match: Matcher | string): number {
    const test: Matcher = typeof match === "string" ? (f) => f.event === match : match;
    return this.frames.filter(test).length;
  }

  close(): void {
    this.ws.close();
  }
}

/** Opens a raw socket as `who` and waits for session:ready. */
export async function openSocket(server: TestServer, who: TestPrincipal, timeoutMs = 5000): Promise<RawSocket> {
  const ws = new WebSocket(server.wsUrl, { headers: who.headers } as any);
  const socket = new RawSocket(ws);
  await socket.next("session:ready", timeoutMs);
  return socket;
}

/** Opens and joins: the socket receives the conversation's topic from here on. */
export async function joinedSocket(server: TestServer, who: TestPrincipal, conversationId: string): Promise<RawSocket> {
  const socket = await openSocket(server, who);
  const ack = await socket.request("join:conversation", { conversationId });
  if (!ack.ok) throw new Error(`join failed: ${JSON.stringify(ack.error)}`);
  return socket;
}

/** A group conversation owned by `owner` with `members` as participants. */
export async function groupConversation(server: TestServer, owner: TestPrincipal, members: TestPrincipal[] = []): Promise<string> {
  const created = await server.request("POST", "/api/conversations", {
    as: owner,
    body: { type: "group", name: "realtime test", participants: members.map((m) => ({ userId: m.id, userType: m.type })) },
  });
  if (created.status !== 201) throw new Error(`create conversation: ${created.status} ${JSON.stringify(created.body)}`);
  return created.body.id;
}

export async function restSend(server: TestServer, who: TestPrincipal, conversationId: string, content: string) {
  const sent = await server.request("POST", `/api/conversations/${conversationId}/messages`, { as: who, body: { content } });
  if (sent.status !== 201) throw new Error(`send: ${sent.status} ${JSON.stringify(sent.body)}`);
  return sent.body;
}

/** An SDK client authenticated as `who`. */
export function sdkClient(server: TestServer, who: TestPrincipal): MessagingClient {
  return new MessagingClient(
    who.type === "user" ? { baseUrl: server.url, token: who.token } : { baseUrl: server.url, apiKey: who.token },
  );
}

/** Polls `check` until it returns true, or fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} not reached within ${timeoutMs} ms`);
    await Bun.sleep(10);
  }
}
